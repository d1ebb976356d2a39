"""Prometheus metrics of one hub (its own registry, so several hubs can share a process)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: incidents per state; sensors as (site, sensor_id, health, seconds since last seen)
StateCounts = Callable[[], tuple[dict[str, int], list[tuple[str, str, str, float]]]]


class _DbCollector(Collector):
    def __init__(self, read: StateCounts) -> None:
        self.read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            states, sensors = self.read()
        except Exception:  # a scrape must not fail because the database is busy
            return []
        incidents = GaugeMetricFamily(
            "ouie_hub_incidents", "Incidents stored, by state", labels=["state"]
        )
        for state, count in sorted(states.items()):
            incidents.add_metric([state], count)
        age = GaugeMetricFamily(
            "ouie_hub_sensor_last_seen_seconds",
            "Seconds since a sensor's last message",
            labels=["site", "sensor"],
        )
        health = GaugeMetricFamily(
            "ouie_hub_sensor_health",
            "1 for the sensor's current health",
            labels=["site", "sensor", "health"],
        )
        for site, sensor, state, seconds in sensors:
            age.add_metric([site, sensor], seconds)
            health.add_metric([site, sensor, state], 1.0)
        return [incidents, age, health]


class HubMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("ouie_hub_messages", "Messages accepted", ["kind"], registry=r)
        self.onset_requests = Counter(
            "ouie_hub_onset_requests",
            "Onset requests sent to sensors (docs/hub.md, onsets on request)",
            registry=r,
        )
        self.rejects = Counter(
            "ouie_hub_rejects",
            "Messages refused (dead-lettered), by reason",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter("ouie_hub_duplicates", "Duplicate messages dropped", registry=r)
        self.db_errors = Counter("ouie_hub_db_errors", "Failed batch commits (retried)", registry=r)
        self.fusion_seconds = Histogram(
            "ouie_hub_fusion_seconds",
            "Fusion and localisation time per batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "ouie_hub_batch_seconds",
            "Ingest batch time (validate, fuse, commit)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.audit_entries = Counter("ouie_hub_audit_entries", "Audit entries appended", registry=r)
        self.retention_deleted = Counter(
            "ouie_hub_retention_deleted", "Rows deleted by retention", ["table"], registry=r
        )

    def add_db_collector(self, read: StateCounts) -> None:
        self.registry.register(_DbCollector(read))

    def render(self) -> bytes:
        return generate_latest(self.registry)
