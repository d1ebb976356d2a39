"""The scorecard: what the hub reported against what really happened.

Matching is done at the level the hub works at, so nothing is double counted:

1. every **detection** (one sensor, one label, an onset) is matched to the ground-truth
   event of the same label whose true arrival at that sensor (corrected by the sensor's
   simulated clock offset) is closest, if its onset lies within
   ``[arrival − early_s, arrival + event duration + late_s]``;
2. an **incident** is true when at least one of its detections matched; the event matched by
   its earliest detection founded it, and the incident's position is compared with that
   event's source position (localisation error) and its first appearance through the hub
   with that event's true onset at the nearest sensor (end-to-end latency);
3. a target **event** is detected when any incident holds a detection matched to it, else
   missed; an incident none of whose detections matched is a **false alarm** (counted as
   ``mislabelled`` too when its detections coincide with a real event of another class,
   e.g. a shot reported as an explosion); a second incident founded by an already-founded
   event is a **duplicate**.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from ouie.core.geometry import distance_m
from ouie.core.labels import EVENT_LABELS, is_target
from ouie.sim.scenario import TruthEvent

EARLY_S = 0.25
LATE_S = 0.75


@dataclass(frozen=True)
class ObservedDetection:
    sensor_id: str
    label: str
    onset: datetime
    message_id: str
    fused_as: str = "tdoa"


@dataclass
class ObservedIncident:
    """An incident as read back through the hub's API."""

    id: str
    label: str
    lat: float
    lon: float
    method: str
    radius_m: float
    first_onset: datetime
    detections: list[ObservedDetection] = field(default_factory=list)
    visible_s: float | None = None  # scenario time it first became visible via the hub


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def match_detection(
    detection: ObservedDetection,
    truth: list[TruthEvent],
    origin: datetime,
    clock_offsets_s: dict[str, float],
    any_label: bool = False,
) -> TruthEvent | None:
    """The truth event ``detection`` reports (same label unless ``any_label``), if any."""
    onset = (detection.onset - origin).total_seconds() - clock_offsets_s.get(
        detection.sensor_id, 0.0
    )
    best: tuple[float, TruthEvent] | None = None
    for event in truth:
        if event.label != detection.label and not any_label:
            continue
        arrival = event.arrivals.get(detection.sensor_id)
        if arrival is None:
            continue
        if arrival - EARLY_S <= onset <= arrival + event.duration_s + LATE_S:
            gap = abs(onset - arrival)
            if best is None or gap < best[0]:
                best = (gap, event)
    return best[1] if best else None


def score(
    truth: list[TruthEvent],
    incidents: list[ObservedIncident],
    origin: datetime,
    clock_offsets_s: dict[str, float],
    *,
    sensors: int,
    duration_s: float,
) -> dict[str, Any]:
    """The scorecard as a JSON-ready dict (see docs/twin.md for every key)."""
    matched: dict[str, TruthEvent | None] = {}
    founders: dict[str, TruthEvent] = {}
    detected_events: set[int] = set()
    founded: set[int] = set()
    localisation: list[float] = []
    localisation_tdoa: list[float] = []
    latency: list[float] = []
    per_class: dict[str, dict[str, int]] = defaultdict(
        lambda: {"events": 0, "detected": 0, "missed": 0, "incidents": 0, "false_alarms": 0}
    )
    false_alarms = duplicates = mislabelled = 0
    incident_rows: list[dict[str, Any]] = []
    for incident in sorted(incidents, key=lambda i: i.first_onset):
        per_class[incident.label]["incidents"] += 1
        hits = [
            (d, match_detection(d, truth, origin, clock_offsets_s))
            for d in sorted(incident.detections, key=lambda d: d.onset)
        ]
        for detection, event in hits:
            matched[detection.message_id] = event
            if event is not None:
                detected_events.add(event.index)
        founder = next((event for _, event in hits if event is not None), None)
        row: dict[str, Any] = {
            "id": incident.id,
            "label": incident.label,
            "method": incident.method,
            "lat": round(incident.lat, 7),
            "lon": round(incident.lon, 7),
            "radius_m": round(incident.radius_m, 1),
            "detections": len(incident.detections),
            "sensors": len({d.sensor_id for d in incident.detections}),
            "truth_index": founder.index if founder else None,
            "error_m": None,
            "latency_s": None,
            "verdict": "false_alarm",
        }
        if founder is None:
            false_alarms += 1
            per_class[incident.label]["false_alarms"] += 1
            heard = [
                match_detection(d, truth, origin, clock_offsets_s, any_label=True)
                for d in incident.detections
            ]
            actual = next((e for e in heard if e is not None), None)
            if actual is not None:
                mislabelled += 1
                row["verdict"] = "wrong_label"
                row["truth_index"] = actual.index
        elif founder.index in founded:
            duplicates += 1
            row["verdict"] = "duplicate"
        else:
            founded.add(founder.index)
            founders[incident.id] = founder
            row["verdict"] = "true"
            error = distance_m(founder.lat, founder.lon, incident.lat, incident.lon)
            row["error_m"] = round(error, 2)
            localisation.append(error)
            if incident.method == "tdoa":
                localisation_tdoa.append(error)
            if incident.visible_s is not None:
                row["latency_s"] = round(incident.visible_s - founder.nearest_onset_s, 3)
                latency.append(incident.visible_s - founder.nearest_onset_s)
        incident_rows.append(row)
    detected = missed = 0
    truth_rows: list[dict[str, Any]] = []
    for event in truth:
        hit = event.index in detected_events
        if event.is_target:
            per_class[event.label]["events"] += 1
            per_class[event.label]["detected" if hit else "missed"] += 1
            detected += hit
            missed += not hit
        truth_rows.append(
            {
                "index": event.index,
                "label": event.label,
                "target": event.is_target,
                "onset_s": round(event.onset_s, 3),
                "x": round(event.x, 1),
                "y": round(event.y, 1),
                "lat": round(event.lat, 7),
                "lon": round(event.lon, 7),
                "level_db_spl": event.level_db_spl,
                "source": event.source,
                "synthetic": event.synthetic,
                "nearest_sensor": event.nearest_sensor,
                "sensors_in_range": event.sensors_in_range,
                "detected": hit,
            }
        )
    all_detections = [d for i in incidents for d in i.detections]
    onset_errors: list[float] = []  # first detection of each (event, sensor), in ms
    firsts: dict[tuple[int, str], float] = {}
    for d in sorted(all_detections, key=lambda d: d.onset):
        event = matched.get(d.message_id)
        if event is None or (event.index, d.sensor_id) in firsts:
            continue
        onset = (d.onset - origin).total_seconds() - clock_offsets_s.get(d.sensor_id, 0.0)
        firsts[(event.index, d.sensor_id)] = onset - event.arrivals[d.sensor_id]
    onset_errors = [abs(v) * 1000.0 for v in firsts.values()]
    return {
        "sensors": sensors,
        "duration_s": duration_s,
        "events": sum(e.is_target for e in truth),
        "detected": detected,
        "missed": missed,
        "false_alarms": false_alarms,
        "mislabelled": mislabelled,
        "duplicate_incidents": duplicates,
        "incidents": len(incidents),
        "per_class": {
            label: dict(counts)
            for label, counts in sorted(per_class.items())
            if is_target(label) or counts["incidents"]
        },
        "localisation_error_m": {
            "median": _percentile(localisation, 50),
            "p90": _percentile(localisation, 90),
            "n": len(localisation),
            "tdoa_median": _percentile(localisation_tdoa, 50),
            "tdoa_n": len(localisation_tdoa),
        },
        "latency_s": {
            "p50": _percentile(latency, 50),
            "p95": _percentile(latency, 95),
            "n": len(latency),
        },
        "detections": {
            "total": len(all_detections),
            "matched": sum(1 for d in all_detections if matched.get(d.message_id) is not None),
        },
        "onset_error_ms": {
            "median_abs": _percentile(onset_errors, 50),
            "p90_abs": _percentile(onset_errors, 90),
            "n": len(onset_errors),
        },
        "truth": truth_rows,
        "incident_list": incident_rows,
    }


def all_labels() -> list[str]:
    return [label.value for label in EVENT_LABELS]


def aggregate(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """One scorecard over several runs (``ouie demo``): counts add up, errors and latencies
    are pooled from every run's incidents, CPU is averaged over audio time."""
    errors = [
        float(row["error_m"])
        for card in cards
        for row in card["incident_list"]
        if row["error_m"] is not None
    ]
    latencies = [
        float(row["latency_s"])
        for card in cards
        for row in card["incident_list"]
        if row["latency_s"] is not None
    ]
    per_class: dict[str, dict[str, int]] = {}
    for card in cards:
        for label, counts in card["per_class"].items():
            into = per_class.setdefault(label, dict.fromkeys(counts, 0))
            for key, value in counts.items():
                into[key] = into.get(key, 0) + value
    duration = sum(float(card["duration_s"]) for card in cards)
    cpu_s = sum(float(card["node_cpu"]["total_cpu_s"]) for card in cards)
    sensor_seconds = sum(float(card["duration_s"]) * int(card["sensors"]) for card in cards)
    return {
        "runs": len(cards),
        "duration_s": duration,
        "events": sum(int(card["events"]) for card in cards),
        "detected": sum(int(card["detected"]) for card in cards),
        "missed": sum(int(card["missed"]) for card in cards),
        "false_alarms": sum(int(card["false_alarms"]) for card in cards),
        "mislabelled": sum(int(card.get("mislabelled", 0)) for card in cards),
        "duplicate_incidents": sum(int(card["duplicate_incidents"]) for card in cards),
        "incidents": sum(int(card["incidents"]) for card in cards),
        "per_class": dict(sorted(per_class.items())),
        "localisation_error_m": {
            "median": _percentile(errors, 50),
            "p90": _percentile(errors, 90),
            "n": len(errors),
        },
        "latency_s": {
            "p50": _percentile(latencies, 50),
            "p95": _percentile(latencies, 95),
            "n": len(latencies),
        },
        "node_cpu": {
            "percent_of_core_mean": round(100.0 * cpu_s / sensor_seconds, 3)
            if sensor_seconds
            else None,
            "total_cpu_s": round(cpu_s, 3),
        },
        "wall_s": round(sum(float(card["wall_s"]) for card in cards), 2),
        "scenarios": cards,
    }
