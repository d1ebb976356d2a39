"""WGS84 latitude/longitude ↔ a local east/north frame in metres around a site origin.

A site is at most a few kilometres across, so a tangent-plane approximation with the WGS84
meridional and prime-vertical radii of curvature at the origin is exact to millimetres over
the test zone and needs no projection library. Distances between two WGS84 points use the
same frame (``distance_m``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_A = 6_378_137.0  # WGS84 semi-major axis, m
_F = 1.0 / 298.257223563
_E2 = _F * (2.0 - _F)


@dataclass(frozen=True)
class LocalFrame:
    """East (x) / north (y) metres around ``(lat0, lon0)``."""

    lat0: float
    lon0: float

    @property
    def _radii(self) -> tuple[float, float]:
        phi = math.radians(self.lat0)
        w = 1.0 - _E2 * math.sin(phi) ** 2
        meridional = _A * (1.0 - _E2) / w**1.5
        prime_vertical = _A / math.sqrt(w)
        return meridional, prime_vertical * math.cos(phi)

    def to_xy(self, lat: float, lon: float) -> tuple[float, float]:
        m, n_cos = self._radii
        return (math.radians(lon - self.lon0) * n_cos, math.radians(lat - self.lat0) * m)

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        m, n_cos = self._radii
        return (self.lat0 + math.degrees(y / m), self.lon0 + math.degrees(x / n_cos))


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Horizontal distance between two nearby WGS84 points, in metres."""
    frame = LocalFrame(lat1, lon1)
    x, y = frame.to_xy(lat2, lon2)
    return math.hypot(x, y)
