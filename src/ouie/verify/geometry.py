"""Small-area geometry for cueing and flight planning, written out (no shapely, no pyproj).

``LocalFrame`` maps WGS84 latitude/longitude to east/north metres around an origin with
the ellipsoid's radii of curvature (meridional M, prime vertical N) at the mid latitude
of the two points. Against the WGS84 geodesic, distances are within 1 cm and bearings
within 0.03° up to 2.5 km (tested), far under any incident's uncertainty (cameras and
docks are their own origins). Heights are above local ground; the
ground is taken as flat between a camera or dock and the incident (the drop of the
Earth's curvature, d²/2R, is 8 cm at 1 km and ignored).

Polygons (for no-fly zones) are lists of rings of ``(east, north)`` vertices; the first ring
is the outer boundary, the others holes, as in GeoJSON. ``point_in_polygon`` is the
even–odd ray-crossing test; ``segment_intersects_polygon`` tests the segment against every
edge and also catches segments lying wholly inside; ``segment_polygon_distance`` gives the
clearance a buffer needs.

``sun_elevation_deg`` is the NOAA solar-position approximation (about 0.1° between 1901
and 2099), enough to tell day, civil twilight and night apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

WGS84_A = 6_378_137.0
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)

Point = tuple[float, float]
Ring = Sequence[Point]
Polygon = Sequence[Ring]


def _radii(lat: float) -> tuple[float, float]:
    """Metres per radian northwards (M) and eastwards (N cos φ) at latitude ``lat``."""
    s = math.sin(math.radians(lat))
    w = math.sqrt(1.0 - WGS84_E2 * s * s)
    return WGS84_A * (1.0 - WGS84_E2) / (w * w * w), WGS84_A / w * math.cos(math.radians(lat))


class LocalFrame:
    """East/north metres around ``(lat0, lon0)`` (mid-latitude scaling)."""

    def __init__(self, lat0: float, lon0: float) -> None:
        if not (-90.0 < lat0 < 90.0 and -180.0 <= lon0 <= 180.0):
            raise ValueError(f"({lat0}, {lon0}) is not a usable WGS84 origin")
        self.lat0 = lat0
        self.lon0 = lon0

    def to_en(self, lat: float, lon: float) -> Point:
        dlon = (lon - self.lon0 + 540.0) % 360.0 - 180.0
        m, n_cos = _radii((lat + self.lat0) / 2.0)
        return math.radians(dlon) * n_cos, math.radians(lat - self.lat0) * m

    def to_latlon(self, east: float, north: float) -> tuple[float, float]:
        lat = self.lat0
        for _ in range(4):  # fixed point on the mid latitude; converges to < 1e-12°
            m, n_cos = _radii((lat + self.lat0) / 2.0)
            lat = self.lat0 + math.degrees(north / m)
        lon = self.lon0 + math.degrees(east / n_cos)
        return lat, (lon + 540.0) % 360.0 - 180.0


def bearing_distance(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    """Azimuth (degrees clockwise from true north, [0, 360)) and horizontal distance (m)."""
    east, north = LocalFrame(lat0, lon0).to_en(lat, lon)
    return math.degrees(math.atan2(east, north)) % 360.0, math.hypot(east, north)


def wrap180(angle: float) -> float:
    """``angle`` in degrees, wrapped to (-180, 180]."""
    wrapped = (angle + 180.0) % 360.0 - 180.0
    return 180.0 if wrapped == -180.0 else wrapped


# -- polygons -----------------------------------------------------------------------------


def _point_in_ring(p: Point, ring: Ring) -> bool:
    x, y = p
    inside = False
    n = len(ring)
    j = n - 1
    for i in range(n):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > y) != (yj > y):
            x_cross = xi + (y - yi) * (xj - xi) / (yj - yi)
            if x < x_cross:
                inside = not inside
        j = i
    return inside


def point_in_polygon(p: Point, polygon: Polygon) -> bool:
    """Inside the outer ring and outside every hole (points on an edge: either way)."""
    if not polygon or not _point_in_ring(p, polygon[0]):
        return False
    return not any(_point_in_ring(p, hole) for hole in polygon[1:])


def _orient(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a: Point, b: Point, p: Point) -> bool:
    return (
        min(a[0], b[0]) - 1e-9 <= p[0] <= max(a[0], b[0]) + 1e-9
        and min(a[1], b[1]) - 1e-9 <= p[1] <= max(a[1], b[1]) + 1e-9
    )


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Closed segments p1–p2 and q1–q2 share at least one point."""
    d1 = _orient(q1, q2, p1)
    d2 = _orient(q1, q2, p2)
    d3 = _orient(p1, p2, q1)
    d4 = _orient(p1, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        (d1 == 0 and _on_segment(q1, q2, p1))
        or (d2 == 0 and _on_segment(q1, q2, p2))
        or (d3 == 0 and _on_segment(p1, p2, q1))
        or (d4 == 0 and _on_segment(p1, p2, q2))
    )


def _edges(polygon: Polygon) -> list[tuple[Point, Point]]:
    edges: list[tuple[Point, Point]] = []
    for ring in polygon:
        n = len(ring)
        for i in range(n):
            a, b = ring[i], ring[(i + 1) % n]
            if a != b:
                edges.append((a, b))
    return edges


def segment_intersects_polygon(a: Point, b: Point, polygon: Polygon) -> bool:
    """The segment a–b touches the polygon's area (crosses an edge or lies inside)."""
    if point_in_polygon(a, polygon) or point_in_polygon(b, polygon):
        return True
    return any(segments_intersect(a, b, e1, e2) for e1, e2 in _edges(polygon))


def point_segment_distance(p: Point, a: Point, b: Point) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    if length2 == 0.0:
        return math.hypot(p[0] - a[0], p[1] - a[1])
    t = max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2))
    return math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy))


def segment_polygon_distance(a: Point, b: Point, polygon: Polygon) -> float:
    """Shortest distance (m) from the segment a–b to the polygon's area (0 if they meet)."""
    if segment_intersects_polygon(a, b, polygon):
        return 0.0
    best = math.inf
    for e1, e2 in _edges(polygon):
        best = min(
            best,
            point_segment_distance(a, e1, e2),
            point_segment_distance(b, e1, e2),
            point_segment_distance(e1, a, b),
            point_segment_distance(e2, a, b),
        )
    return best


def circle_points(center: Point, radius: float, n: int = 36) -> list[Point]:
    """``n`` vertices of a circle (an orbit, approximated as a polygon for checks)."""
    return [
        (
            center[0] + radius * math.sin(2.0 * math.pi * k / n),
            center[1] + radius * math.cos(2.0 * math.pi * k / n),
        )
        for k in range(n)
    ]


# -- sun ----------------------------------------------------------------------------------


def sun_elevation_deg(lat: float, lon: float, when: datetime) -> float:
    """Apparent solar elevation above the horizon, degrees (NOAA approximation)."""
    t = when.astimezone(UTC)
    day_of_year = t.timetuple().tm_yday
    hours = t.hour + t.minute / 60.0 + (t.second + t.microsecond / 1e6) / 3600.0
    days_in_year = 366 if (t.year % 4 == 0 and (t.year % 100 != 0 or t.year % 400 == 0)) else 365
    g = 2.0 * math.pi / days_in_year * (day_of_year - 1 + (hours - 12.0) / 24.0)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    true_solar_min = hours * 60.0 + eqtime + 4.0 * lon
    hour_angle = math.radians(true_solar_min / 4.0 - 180.0)
    phi = math.radians(lat)
    cos_zenith = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(
        hour_angle
    )
    zenith = math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))
    return 90.0 - zenith
