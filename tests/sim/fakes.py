"""A stand-in hub for testing the twin's plumbing without the real one.

It reads events from the in-process bus and groups detections of one label whose onsets are
within 0.5 s into an incident placed at the earliest sensor. No TDOA: the real hub's fusion
is tested with the hub, and the twin with the real hub in ``test_twin_hub``.
"""

from __future__ import annotations

import time
from datetime import datetime

from ouie.core.messages import EventMessage
from ouie.sim.scorecard import ObservedDetection, ObservedIncident
from ouie.sim.site import Site
from ouie.transport.inproc import InProcBus, Subscription


class FakeHub:
    def __init__(self) -> None:
        self._bus = InProcBus()
        self._sub: Subscription | None = None
        self.positions: dict[str, tuple[float, float]] = {}
        self.incident_list: list[ObservedIncident] = []
        self.sites: dict[str, str] = {}  # incident id → site
        self._seen: dict[str, float] = {}
        self.statuses = 0

    @property
    def bus(self) -> InProcBus:
        return self._bus

    async def register_site(self, site: Site) -> None:
        self.positions = {s.id: (s.lat, s.lon) for s in site.sensors}
        if self._sub is None:
            self._sub = self._bus.subscribe("ouie/v1/#")

    busy = False  # sends the nodes nothing

    async def settle(self) -> None:
        self._drain()

    def first_seen(self, incident_id: str) -> float | None:
        return self._seen.get(incident_id)

    async def detection_ids(self, site: str, since: datetime) -> set[str]:
        return {d.message_id for i in await self.incidents(site, since) for d in i.detections}

    async def incidents(self, site: str, since: datetime) -> list[ObservedIncident]:
        self._drain()
        return [
            i for i in self.incident_list if self.sites[i.id] == site and i.first_onset >= since
        ]

    def _drain(self) -> None:
        assert self._sub is not None
        while (message := self._sub.get_nowait()) is not None:
            if message.topic.endswith("/status"):
                self.statuses += 1
            elif message.topic.endswith("/events"):
                self._fuse(EventMessage.model_validate_json(message.payload))

    def _fuse(self, event: EventMessage) -> None:
        detection = ObservedDetection(
            event.sensor_id, event.label.value, event.onset, event.message_id
        )
        for incident in self.incident_list:
            if (
                self.sites[incident.id] == event.site
                and incident.label == event.label.value
                and abs((event.onset - incident.first_onset).total_seconds()) < 0.5
            ):
                incident.detections.append(detection)
                incident.first_onset = min(incident.first_onset, event.onset)
                return
        lat, lon = self.positions[event.sensor_id]
        incident = ObservedIncident(
            id=f"i{len(self.incident_list)}",
            label=event.label.value,
            lat=lat,
            lon=lon,
            method="nearest",
            radius_m=50.0,
            first_onset=event.onset,
            detections=[detection],
        )
        self.incident_list.append(incident)
        self.sites[incident.id] = event.site
        self._seen[incident.id] = time.monotonic()
