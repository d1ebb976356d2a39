"""The real hub (``ouie.hub.service.Hub``) as the twin drives it, in this process.

``LocalHub`` owns a ``Hub`` on an SQLite file (or any ``database_url``), fed by an
``InProcBus`` or by Mosquitto, and registers the site's sensors the way ``ouie sensor add``
does. Everything the twin learns back goes through the hub's operator API
(``ouie.hub.api``, authenticated with an API token of a ``viewer`` user, over an in-process
ASGI transport): incidents, their detections, and the live stream. An incident counts as
visible when the hub's live broadcaster — the source of the API's Server-Sent Events
stream — announces it. The runner's "has the hub caught up" polling reads the database
(it is bookkeeping, not an operator read, and must not fill the audit log). With
``via_api=False`` incidents are read from the database too (large benchmarks, where
audited API reads would dominate).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ouie.config.hub import HubSettings
from ouie.core.timebase import utc_now
from ouie.sim.scorecard import ObservedDetection, ObservedIncident, ObservedShot
from ouie.sim.site import Site
from ouie.transport.inproc import InProcBus


def hub_settings(
    database_url: str,
    broker: str | None = None,
    temperature_c: float = 15.0,
    client_id: str = "ouie-sim-hub",
    extra: dict[str, Any] | None = None,
) -> HubSettings:
    """Settings of the twin's hub; ``extra`` adds sections (e.g. ``web``) where they exist."""
    data: dict[str, Any] = {
        "database": {"url": database_url, "batch_wait_ms": 5.0},
        "fusion": {"temperature_c": temperature_c},
        "retention": {"interval_s": 24 * 3600.0},
    }
    if broker:
        data["mqtt"] = {
            "enabled": True,
            "url": broker,
            "client_id": client_id,
            "session_expiry_s": 300,
        }
    for key, value in (extra or {}).items():
        if key in HubSettings.model_fields:
            data[key] = value
    return HubSettings.model_validate(data)


def _incident_from_row(row: Any) -> ObservedIncident:
    return ObservedIncident(
        id=row.id,
        label=row.label,
        lat=row.lat,
        lon=row.lon,
        method=row.method,
        radius_m=row.radius_m,
        first_onset=row.first_onset,
        detections=[
            ObservedDetection(
                d.sensor_id, d.label, d.onset, d.message_id, d.fused_as, d.shot_number
            )
            for d in row.detections
        ],
        shots=[
            _shot(s.number, s.lat, s.lon, s.method, s.radius_m, s.sensor_count) for s in row.shots
        ],
    )


def _shot(
    number: int, lat: float, lon: float, method: str, radius_m: float, sensors: int
) -> ObservedShot:
    return ObservedShot(
        int(number), float(lat), float(lon), str(method), float(radius_m), int(sensors)
    )


Listener = Callable[[dict[str, Any]], None]


class LocalHub:
    """A real hub in this process, for the twin and ``ouie demo``."""

    def __init__(
        self,
        *,
        database_url: str | None = None,
        broker: str | None = None,
        temperature_c: float = 15.0,
        workdir: Path | None = None,
        via_api: bool = True,
        extra_settings: dict[str, Any] | None = None,
    ) -> None:
        from ouie.hub.service import Hub

        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="ouie-hub-")
        self.workdir = workdir or Path(self._tmp.name if self._tmp else ".")
        url = database_url or f"sqlite:///{self.workdir / 'ouie-hub.sqlite3'}"
        self._bus = None if broker else InProcBus()
        self.settings = hub_settings(
            url,
            broker,
            temperature_c,
            client_id=f"ouie-sim-hub-{uuid.uuid4().hex[:8]}",
            extra=extra_settings,
        )
        self.hub = Hub(self.settings, bus=self._bus)
        self.via_api = via_api
        self.listeners: list[Listener] = []
        self._first_seen: dict[str, float] = {}
        self._live_task: asyncio.Task[None] | None = None
        self._client: Any = None

    @property
    def bus(self) -> InProcBus | None:
        return self._bus

    async def start(self) -> None:
        await self.hub.start()
        queue = self.hub.live.subscribe()
        self._live_task = asyncio.create_task(self._follow_live(queue))
        if self.via_api:
            self._client = await asyncio.to_thread(self._api_client)

    def _api_client(self) -> Any:
        import httpx

        from ouie.hub import auth
        from ouie.hub.api import create_app

        now = utc_now()
        with self.hub.sessions() as session, session.begin():
            user = auth.create_user(
                session, f"ouie-sim-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex, "viewer", now
            )
            token = auth.create_api_token(session, user, "digital twin", now)
        app = create_app(self.hub, manage_hub=False)
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://hub/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30.0,
        )

    async def _follow_live(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            message = await queue.get()
            incident = message.get("incident") or {}
            incident_id = incident.get("id")
            if isinstance(incident_id, str) and incident_id not in self._first_seen:
                self._first_seen[incident_id] = time.monotonic()
            for listener in list(self.listeners):
                listener(message)

    async def stop(self) -> None:
        if self._live_task is not None:
            self._live_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._live_task
        if self._client is not None:
            await self._client.aclose()
        await self.hub.stop()
        self.hub.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def first_seen(self, incident_id: str) -> float | None:
        return self._first_seen.get(incident_id)

    async def register_site(self, site: Site) -> None:
        await asyncio.to_thread(self._register, site)

    def _register(self, site: Site) -> None:
        from ouie.hub.sensors import add_sensor, find

        added = False
        with self.hub.sessions() as session, session.begin():
            for sensor in site.sensors:
                if find(session, site.site_id, sensor.id) is not None:
                    continue
                add_sensor(
                    session,
                    site=site.site_id,
                    sensor_id=sensor.id,
                    lat=sensor.lat,
                    lon=sensor.lon,
                    height_m=sensor.height_m,
                    mounting_height_m=sensor.height_m,
                    mounting=sensor.mounting,
                    calibration_db=sensor.calibration_db_spl,
                    name=sensor.id,
                    actor="ouie-sim",
                    now=utc_now(),
                )
                added = True
        if added:
            self.hub.reload_sensors()

    @property
    def busy(self) -> bool:
        """Onset requests not yet sent (``Hub.send_onset_requests`` waits before sending),
        or messages received and not yet committed (the answers to them, through MQTT)."""
        worker = self.hub.worker
        return bool(self.hub.background) or worker.finished < worker.submitted

    async def settle(self) -> None:
        """In-process bus: wait until everything sent so far is committed."""
        if self._bus is not None:
            await self.hub.drain()

    async def detection_ids(self, site: str, since: datetime) -> set[str]:
        """Progress check for the runner (not the operator's view): read from the database,
        so that polling neither fills the audit log nor races the ingest worker."""
        return await asyncio.to_thread(self._detection_ids, site, since)

    def _detection_ids(self, site: str, since: datetime) -> set[str]:
        from sqlalchemy import select

        from ouie.hub.db import Detection

        with self.hub.sessions() as session:
            return set(
                session.execute(
                    select(Detection.message_id).where(
                        Detection.site == site, Detection.onset >= since
                    )
                ).scalars()
            )

    async def incidents(self, site: str, since: datetime) -> list[ObservedIncident]:
        if not self.via_api:
            return await asyncio.to_thread(self._read_database, site, since)
        by_incident: dict[str, list[ObservedDetection]] = {}
        for detection, incident_id in await self._detections(site, since):
            if incident_id:
                by_incident.setdefault(incident_id, []).append(detection)
        found: list[ObservedIncident] = []
        for incident_id, members in by_incident.items():
            response = await self._client.get(f"/incidents/{incident_id}")
            response.raise_for_status()
            data = response.json()
            found.append(
                ObservedIncident(
                    id=data["id"],
                    label=data["label"],
                    lat=float(data["lat"]),
                    lon=float(data["lon"]),
                    method=data["method"],
                    radius_m=float(data["radius_m"]),
                    first_onset=datetime.fromisoformat(data["first_onset"]),
                    detections=sorted(members, key=lambda d: d.onset),
                    shots=[
                        _shot(
                            shot["number"],
                            shot["lat"],
                            shot["lon"],
                            shot["method"],
                            shot["radius_m"],
                            shot["sensor_count"],
                        )
                        for shot in data.get("shots", [])
                    ],
                )
            )
        return sorted(found, key=lambda i: i.first_onset)

    async def _detections(
        self, site: str, since: datetime
    ) -> list[tuple[ObservedDetection, str | None]]:
        """Detections of ``site`` with onset ≥ ``since`` and the incident each belongs to."""
        if not self.via_api:
            rows = await asyncio.to_thread(self._read_database, site, since)
            return [(d, i.id) for i in rows for d in i.detections]
        response = await self._client.get(
            "/detections", params={"site": site, "since": since.isoformat(), "limit": 5000}
        )
        response.raise_for_status()
        return [
            (
                ObservedDetection(
                    row["sensor_id"],
                    row["label"],
                    datetime.fromisoformat(row["onset"]),
                    row["message_id"],
                    row.get("fused_as", "tdoa"),
                    row.get("shot_number"),
                ),
                row.get("incident_id"),
            )
            for row in response.json()["detections"]
        ]

    def _read_database(self, site: str, since: datetime) -> list[ObservedIncident]:
        from sqlalchemy import select
        from sqlalchemy.orm import selectinload

        from ouie.hub.db import Incident

        with self.hub.sessions() as session:
            rows = (
                session.execute(
                    select(Incident)
                    .where(Incident.site == site, Incident.first_onset >= since)
                    .options(selectinload(Incident.detections))
                    .order_by(Incident.first_onset)
                )
                .scalars()
                .all()
            )
            return [_incident_from_row(row) for row in rows]
