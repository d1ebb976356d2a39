"""WGS84 ↔ local East/North/Up (ENU) metres around a site origin, via pyproj.

The hub localises sounds in a local Cartesian frame: positions are converted from WGS84
geodetic coordinates (EPSG:4979: longitude, latitude, ellipsoidal height) to Earth-centred
Earth-fixed coordinates (EPSG:4978) with pyproj, then rotated into the tangent plane at the
origin. The conversion is exact (no flat-Earth approximation), so it is good for any site
size; the inverse goes back the same way.

The 2-D views of this frame (``LocalFrame``: east/north on the ellipsoid), distances,
bearings and polygons live in ``ouie.core.geometry``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from pyproj import Transformer

FloatArray = NDArray[np.float64]


@lru_cache(maxsize=1)
def _to_ecef() -> Transformer:
    return Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)


@lru_cache(maxsize=1)
def _from_ecef() -> Transformer:
    return Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)


def _rotation(lat0: float, lon0: float) -> FloatArray:
    phi, lam = math.radians(lat0), math.radians(lon0)
    sp, cp, sl, cl = math.sin(phi), math.cos(phi), math.sin(lam), math.cos(lam)
    return np.array(
        [
            [-sl, cl, 0.0],
            [-sp * cl, -sp * sl, cp],
            [cp * cl, cp * sl, sp],
        ],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class ENUFrame:
    """A local tangent frame: x east, y north, z up, metres from ``(lat0, lon0, h0)``."""

    lat0: float
    lon0: float
    h0: float = 0.0
    _origin: FloatArray = field(init=False, repr=False, compare=False)
    _rot: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat0 <= 90.0 and -180.0 <= self.lon0 <= 180.0):
            raise ValueError(f"origin ({self.lat0}, {self.lon0}) is not a WGS84 position")
        x, y, z = _to_ecef().transform(self.lon0, self.lat0, self.h0)
        object.__setattr__(self, "_origin", np.array([x, y, z], dtype=np.float64))
        object.__setattr__(self, "_rot", _rotation(self.lat0, self.lon0))

    def to_enu_many(
        self, lat: FloatArray, lon: FloatArray, height: FloatArray | None = None
    ) -> FloatArray:
        """``[n, 3]`` ENU metres for arrays of latitude, longitude and ellipsoidal height."""
        lat_a = np.asarray(lat, dtype=np.float64)
        lon_a = np.asarray(lon, dtype=np.float64)
        h_a = (
            np.zeros_like(lat_a) + self.h0
            if height is None
            else np.asarray(height, dtype=np.float64)
        )
        x, y, z = _to_ecef().transform(lon_a, lat_a, h_a)
        ecef = np.stack([np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(z)], axis=-1)
        result: FloatArray = (ecef - self._origin) @ self._rot.T
        return result

    def to_enu(
        self, lat: float, lon: float, height: float | None = None
    ) -> tuple[float, float, float]:
        enu = self.to_enu_many(
            np.array([lat]), np.array([lon]), None if height is None else np.array([height])
        )[0]
        return float(enu[0]), float(enu[1]), float(enu[2])

    def to_geodetic(self, east: float, north: float, up: float = 0.0) -> tuple[float, float, float]:
        """``(lat, lon, ellipsoidal height)`` of an ENU point."""
        ecef = self._rot.T @ np.array([east, north, up], dtype=np.float64) + self._origin
        lon, lat, h = _from_ecef().transform(ecef[0], ecef[1], ecef[2])
        return float(lat), float(lon), float(h)

    def to_geodetic_many(
        self, east: FloatArray, north: FloatArray, up: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(lat, lon, ellipsoidal height)`` arrays of ENU points (one pyproj call)."""
        enu = np.stack(
            [
                np.atleast_1d(np.asarray(east, dtype=np.float64)),
                np.atleast_1d(np.asarray(north, dtype=np.float64)),
                np.atleast_1d(np.asarray(up, dtype=np.float64)),
            ],
            axis=-1,
        )
        ecef = enu @ self._rot + self._origin
        lon, lat, h = _from_ecef().transform(ecef[:, 0], ecef[:, 1], ecef[:, 2])
        return (
            np.asarray(lat, dtype=np.float64),
            np.asarray(lon, dtype=np.float64),
            np.asarray(h, dtype=np.float64),
        )


def speed_of_sound(temperature_c: float) -> float:
    """Speed of sound in dry air, m/s (331.3 · √(1 + T/273.15))."""
    return 331.3 * math.sqrt(1.0 + temperature_c / 273.15)
