"""Sensor registry cache: positions in each site's local ENU frame, tokens, thresholds.

The database is the source of truth (``sensors`` table); this cache is reloaded when the
API or CLI changes a sensor and, at most every few seconds, when a message names a sensor
it does not know (a sensor added by another hub process).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ouie.core.geo import ENUFrame
from ouie.hub.db import Sensor
from ouie.transport.signing import SigningKeyError, VerifyKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SensorInfo:
    pk: int
    site: str
    sensor_id: str
    lat: float
    lon: float
    height_m: float
    mounting_height_m: float
    calibration_db: float | None
    token_hash: str | None
    enu: tuple[float, float, float]
    #: the key its messages must be signed with; ``keyed`` without a key: the stored key is
    #: unreadable, and every message is refused rather than accepted unsigned
    signing_key: VerifyKey | None = None
    keyed: bool = False


@dataclass(frozen=True)
class SiteGeometry:
    frame: ENUFrame
    source_up: float  # ENU height at which sources are assumed (ground + a little)


def _verify_key(sensor: Sensor) -> VerifyKey | None:
    if sensor.signing_key is None:
        return None
    try:
        return VerifyKey.from_text(sensor.signing_key)
    except SigningKeyError:
        log.error("sensor %s/%s: stored signing key is unreadable", sensor.site, sensor.sensor_id)
        return None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


class SensorRegistry:
    def __init__(self, source_height_m: float = 1.0, refresh_interval_s: float = 5.0) -> None:
        self.source_height_m = source_height_m
        self.refresh_interval_s = refresh_interval_s
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str, str], SensorInfo] = {}
        self._by_pk: dict[int, SensorInfo] = {}
        self._by_token: dict[str, SensorInfo] = {}
        self._sites: dict[str, SiteGeometry] = {}
        self._loaded_at = 0.0
        self.version = 0

    def load(self, session: Session) -> None:
        rows = session.execute(select(Sensor)).scalars().all()
        sites: dict[str, list[Sensor]] = {}
        for row in rows:
            sites.setdefault(row.site, []).append(row)
        by_key: dict[tuple[str, str], SensorInfo] = {}
        geometries: dict[str, SiteGeometry] = {}
        for site, sensors in sites.items():
            lat0 = float(np.mean([s.lat for s in sensors]))
            lon0 = float(np.mean([s.lon for s in sensors]))
            ground = float(np.mean([s.height_m - s.mounting_height_m for s in sensors]))
            frame = ENUFrame(lat0, lon0, ground)
            enu = frame.to_enu_many(
                np.array([s.lat for s in sensors]),
                np.array([s.lon for s in sensors]),
                np.array([s.height_m for s in sensors]),
            )
            geometries[site] = SiteGeometry(frame, self.source_height_m)
            for sensor, xyz in zip(sensors, enu, strict=True):
                by_key[(site, sensor.sensor_id)] = SensorInfo(
                    pk=sensor.id,
                    site=site,
                    sensor_id=sensor.sensor_id,
                    lat=sensor.lat,
                    lon=sensor.lon,
                    height_m=sensor.height_m,
                    mounting_height_m=sensor.mounting_height_m,
                    calibration_db=sensor.calibration_db,
                    token_hash=sensor.token_hash,
                    enu=(float(xyz[0]), float(xyz[1]), float(xyz[2])),
                    signing_key=_verify_key(sensor),
                    keyed=sensor.signing_key is not None,
                )
        with self._lock:
            self._by_key = by_key
            self._by_pk = {info.pk: info for info in by_key.values()}
            self._by_token = {
                info.token_hash: info for info in by_key.values() if info.token_hash is not None
            }
            self._sites = geometries
            self._loaded_at = time.monotonic()
            self.version += 1

    def maybe_reload(self, session: Session) -> bool:
        """Reload if the cache is older than the refresh interval; True if it did."""
        if time.monotonic() - self._loaded_at < self.refresh_interval_s:
            return False
        self.load(session)
        return True

    def get(self, site: str, sensor_id: str) -> SensorInfo | None:
        return self._by_key.get((site, sensor_id))

    def by_pk(self, pk: int) -> SensorInfo | None:
        return self._by_pk.get(pk)

    def by_token(self, token: str) -> SensorInfo | None:
        return self._by_token.get(hash_token(token))

    def site(self, site: str) -> SiteGeometry | None:
        return self._sites.get(site)

    def all(self) -> list[SensorInfo]:
        return list(self._by_key.values())
