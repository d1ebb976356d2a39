"""A real hub for console tests: SQLite in a temp dir, the bundled Saint-Étienne site's
sensors registered, one user per role, and events sent the way a node sends them."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from ouie.config.hub import DatabaseSettings, HubSettings, RetentionSettings
from ouie.config.site import SensorSpec
from ouie.config.web import WebSettings
from ouie.core.geo import speed_of_sound
from ouie.core.labels import EventLabel
from ouie.core.messages import EventMessage, LevelStats, StatusMessage
from ouie.core.timebase import utc_now
from ouie.hub import auth, sensors
from ouie.hub.service import Hub
from ouie.sim.site import resolve_site

SITE = "saint-etienne"
PASSWORD = "correct horse battery"
ROLES = ("viewer", "operator", "supervisor", "auditor", "admin")
C = speed_of_sound(15.0)


def settings_for(db: Path, **web: object) -> HubSettings:
    return HubSettings(
        database=DatabaseSettings(url=f"sqlite:///{db}", batch_wait_ms=5.0),
        retention=RetentionSettings(days=30, interval_s=3600.0),
        web=WebSettings(site=SITE, **web),  # type: ignore[arg-type]
    )


@dataclass
class HubEnv:
    hub: Hub
    tokens: dict[str, str] = field(default_factory=dict)  # sensor id → ingest token
    site_sensors: list[SensorSpec] = field(default_factory=list)
    base_url: str = ""
    sequence: int = 0
    client: httpx.Client | None = None

    def add_users(self) -> None:
        with self.hub.sessions() as session, session.begin():
            for role in ROLES:
                auth.create_user(session, role, PASSWORD, role, utc_now())

    def register_site(self) -> None:
        site = resolve_site(SITE)
        self.site_sensors = list(site.sensors)
        with self.hub.sessions() as session, session.begin():
            for spec in site.sensors:
                _, token = sensors.add_sensor(
                    session,
                    site=SITE,
                    sensor_id=spec.id,
                    lat=spec.lat,
                    lon=spec.lon,
                    height_m=spec.height_m,
                    mounting_height_m=spec.height_m,
                    mounting=spec.mounting,
                    actor="test",
                    now=utc_now(),
                )
                self.tokens[spec.id] = token
        self.hub.reload_sensors()

    # -- what a node sends --------------------------------------------------------------
    def _post(self, sensor_id: str, message: EventMessage | StatusMessage) -> None:
        if self.client is None:
            self.client = httpx.Client(base_url=self.base_url, timeout=10.0)
        response = self.client.post(
            "/api/v1/ingest",
            content=message.model_dump_json(),
            headers={
                "Authorization": f"Bearer {self.tokens[sensor_id]}",
                "Content-Type": "application/json",
            },
        )
        assert response.status_code in (200, 202), response.text

    def send_status(self, suppressions: int = 3) -> None:
        for spec in self.site_sensors:
            self._post(
                spec.id,
                StatusMessage(
                    site=SITE,
                    sensor_id=spec.id,
                    sent_at=utc_now(),
                    uptime_s=3600.0,
                    cpu_percent=12.0,
                    rss_mb=80.0,
                    level=LevelStats(mean_dbfs=-52.0, max_dbfs=-21.0, clipped_fraction=0.0),
                    clock_source="ntp",
                    clock_offset_ms=0.4,
                    model_id="compact-test",
                    events_emitted=2,
                    speech_suppressions=suppressions,
                    dropped_chunks=0,
                    invalid_samples=0,
                    spooled_events=0,
                ),
            )

    def sound(
        self,
        label: EventLabel,
        lat: float,
        lon: float,
        when: datetime | None = None,
        hearing_m: float = 120.0,
        score: float = 0.93,
    ) -> list[str]:
        """Events from every sensor within ``hearing_m`` of a sound at (lat, lon), with
        onsets from the travel time; returns the sensors that 'heard' it."""
        when = when or utc_now() - timedelta(seconds=1)
        heard: list[tuple[float, SensorSpec]] = []
        for spec in self.site_sensors:
            d = _distance_m((lat, lon), (spec.lat, spec.lon), spec.height_m - 1.0)
            if d <= hearing_m:
                heard.append((d, spec))
        heard.sort(key=lambda item: item[0])
        for d, spec in heard:
            onset = when + timedelta(seconds=d / C)
            self.sequence += 1
            self._post(
                spec.id,
                EventMessage(
                    site=SITE,
                    sensor_id=spec.id,
                    label=label,
                    onset=onset,
                    offset=onset + timedelta(seconds=0.4),
                    peak_score=max(0.5, score - d / 1000.0),
                    level_dbfs=max(-80.0, -6.0 - 20 * math.log10(max(d, 1.0) / 10.0)),
                    model_id="compact-test",
                    sequence=self.sequence,
                ),
            )
        return [spec.id for _, spec in heard]


def _distance_m(a: tuple[float, float], b: tuple[float, float], dz: float) -> float:
    lat = math.radians((a[0] + b[0]) / 2)
    dy = (a[0] - b[0]) * 111_132.0
    dx = (a[1] - b[1]) * 111_320.0 * math.cos(lat)
    return math.sqrt(dx * dx + dy * dy + dz * dz)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def client_hub(tmp_path: Path, **web: object) -> Iterator[tuple[HubEnv, TestClient]]:
    """A hub behind Starlette's in-process test client (no server, no browser)."""
    from ouie.web.app import create_hub_app

    hub = Hub(settings_for(tmp_path / "hub.sqlite3", **web))
    hub.prepare()
    env = HubEnv(hub)
    env.add_users()
    env.register_site()
    app = create_hub_app(hub)
    with TestClient(app) as client:
        env.client = client
        env.base_url = str(client.base_url)
        try:
            yield env, client
        finally:
            env.client = None
    hub.close()


@contextmanager
def running_hub(tmp_path: Path, **web: object) -> Iterator[HubEnv]:
    """A hub with its HTTP server (uvicorn, loopback) in a background thread."""
    import uvicorn

    from ouie.web.app import create_hub_app

    hub = Hub(settings_for(tmp_path / "hub.sqlite3", **web))
    hub.prepare()
    env = HubEnv(hub)
    env.add_users()
    env.register_site()
    app = create_hub_app(hub)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="ouie-test-hub", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the hub did not start")
        time.sleep(0.05)
    env.base_url = f"http://127.0.0.1:{port}"
    try:
        yield env
    finally:
        if env.client is not None:
            env.client.close()
        server.should_exit = True
        thread.join(timeout=15)
        hub.close()


def log_in(page: Any, username: str, path: str = "/console/") -> None:
    """Log ``username`` in through the real login form and land on ``path``."""
    page.goto(path)
    page.wait_for_url("**/login?next=*")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"**{path}")
