"""Builders for hub tests: settings, sensors on a synthetic site, events from a source."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import create_engine, text

from ouie.config.hub import DatabaseSettings, HubSettings
from ouie.core.geo import ENUFrame, speed_of_sound
from ouie.core.labels import EventLabel
from ouie.core.messages import EventMessage, LevelStats, StatusMessage
from ouie.core.timebase import utc_now
from ouie.hub import sensors
from ouie.hub.service import Hub
from tests._services import PG_URL as PG_BASE

ORIGIN = (48.8566, 2.3522, 40.0)  # Paris, ellipsoidal height of the street
SITE = "testsite"


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def settings_for(url: str, **database: object) -> HubSettings:
    return HubSettings(database=DatabaseSettings(url=url, batch_wait_ms=5.0, **database))  # type: ignore[arg-type]


FRAME = ENUFrame(*ORIGIN)
C = speed_of_sound(15.0)


def sensor_grid(n: int = 5, spacing: float = 80.0) -> list[tuple[str, float, float]]:
    """``n`` sensor ids with ENU east/north positions: a grid-ish layout around the origin."""
    layout = [
        (-spacing / 2, -spacing / 2),
        (spacing / 2, -spacing / 2),
        (spacing / 2, spacing / 2),
        (-spacing / 2, spacing / 2),
        (0.0, spacing * 0.9),
        (spacing * 0.9, 0.0),
        (-spacing * 0.9, 0.0),
        (0.0, -spacing * 0.9),
    ]
    return [(f"s{i + 1}", *layout[i]) for i in range(n)]


def register_sensors(
    hub: Hub, layout: list[tuple[str, float, float]], mount: float = 4.0
) -> dict[str, str]:
    """Add sensors (mounted ``mount`` m above the street) and return their ingest tokens."""
    tokens: dict[str, str] = {}
    now = utc_now()
    with hub.sessions() as session, session.begin():
        for sensor_id, east, north in layout:
            lat, lon, h = FRAME.to_geodetic(east, north, mount)
            _, token = sensors.add_sensor(
                session,
                site=SITE,
                sensor_id=sensor_id,
                lat=lat,
                lon=lon,
                height_m=h,
                mounting_height_m=mount,
                actor="test",
                now=now,
            )
            tokens[sensor_id] = token
    hub.reload_sensors()
    return tokens


def events_for_source(
    layout: list[tuple[str, float, float]],
    east: float,
    north: float,
    t0: datetime,
    label: EventLabel = EventLabel.GUNSHOT,
    jitter_s: float = 0.0,
    rng: np.random.Generator | None = None,
    mount: float = 4.0,
    source_height: float = 1.0,
    sequence: int = 0,
) -> list[EventMessage]:
    rng = rng or np.random.default_rng(0)
    out = []
    for sensor_id, sx, sy in layout:
        d = math.sqrt((sx - east) ** 2 + (sy - north) ** 2 + (mount - source_height) ** 2)
        onset = t0 + timedelta(
            seconds=d / C + float(rng.normal(0.0, jitter_s)) if jitter_s else d / C
        )
        out.append(
            EventMessage(
                site=SITE,
                sensor_id=sensor_id,
                label=label,
                onset=onset,
                offset=onset + timedelta(seconds=0.3),
                peak_score=0.9,
                level_dbfs=-6.0 - 20 * math.log10(max(d, 1.0)),
                model_id="test",
                sequence=sequence,
            )
        )
    return out


def status_for(sensor_id: str, clock_offset_ms: float = 0.0) -> StatusMessage:
    return StatusMessage(
        site=SITE,
        sensor_id=sensor_id,
        sent_at=utc_now(),
        uptime_s=10.0,
        cpu_percent=5.0,
        rss_mb=80.0,
        level=LevelStats(mean_dbfs=-50.0, max_dbfs=-10.0, clipped_fraction=0.0),
        clock_source="ntp",
        clock_offset_ms=clock_offset_ms,
        model_id="test",
        events_emitted=1,
        speech_suppressions=0,
        dropped_chunks=0,
        invalid_samples=0,
        spooled_events=0,
    )


def enu_of(lat: float, lon: float) -> tuple[float, float]:
    east, north, _ = FRAME.to_enu(lat, lon, ORIGIN[2])
    return east, north
