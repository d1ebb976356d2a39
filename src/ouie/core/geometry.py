"""ouie's one geometry module: local metres, distances, bearings and polygons.

Everything that places a point on the ground goes through here, so the hub's localiser,
the console, the compliance check, the drone planner and the digital twin agree:

- ``LocalFrame``: WGS84 latitude/longitude ↔ east/north metres around an origin. It is the
  horizontal view of the hub's ENU frame (``ouie.core.geo.ENUFrame``, exact, on pyproj),
  restricted to points on the ellipsoid, so a position means the same in every package.
- ``distance_m`` / ``bearing_distance`` / ``area_perimeter_m``: the WGS84 geodesic
  (``pyproj.Geod``), exact at any distance.
- ``point_in_polygon``, ``segment_polygon_distance``, ``segment_spans_inside``: planar
  polygons on shapely (GEOS robust predicates), in whatever consistent ``(x, y)`` order the
  caller uses — local ``(east, north)`` metres or ``(lat, lon)`` degrees for zones of a few
  kilometres (edges are straight in degrees, which is within centimetres of the geodesic
  at city scale; the antimeridian and the poles are not handled).

Polygons follow GeoJSON: an outer ring and optional holes, each ring open or closed (a
repeated first vertex is dropped). A point on any edge — outer or hole — counts as
**inside** the polygon: a sensor bolted to the zone's fence is in the zone. A degenerate
polygon (a ring with fewer than three distinct vertices, zero area, a self-intersection, a
hole outside the outer ring, non-finite coordinates) raises ``ValueError`` saying why,
rather than giving an answer nobody specified.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Geod

from ouie.core.geo import ENUFrame

FloatArray = NDArray[np.float64]
Point = tuple[float, float]
Ring = Sequence[Point]

#: At most this many Newton steps in ``LocalFrame.to_latlon``; each one shrinks the height
#: error by ~1e-6 at 5 km, so one or two reach the 0.1 µm stop.
_INVERSE_STEPS = 3


# -- frames and distances -----------------------------------------------------------------


@lru_cache(maxsize=1)
def _geod() -> Geod:
    return Geod(ellps="WGS84")


@dataclass(frozen=True)
class LocalFrame:
    """East/north metres around ``(lat0, lon0)`` for points on the WGS84 ellipsoid.

    ``to_en`` takes a point at ellipsoidal height 0 into the hub's ENU frame at the origin
    and keeps east and north (the small "up" of the Earth's curvature, d²/2R, is dropped:
    −2 m at 5 km). ``to_latlon`` is its exact inverse: the point on the ellipsoid whose
    east/north are the given ones (Newton on the height), so a round trip is exact to well
    under a millimetre over any site. Heights above ground stay with the caller.
    """

    lat0: float
    lon0: float
    _enu: ENUFrame = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_enu", ENUFrame(self.lat0, self.lon0, 0.0))

    def to_en_many(self, lat: FloatArray, lon: FloatArray) -> FloatArray:
        """``[n, 2]`` east/north metres of arrays of latitude and longitude."""
        lat_a = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        enu = self._enu.to_enu_many(lat_a, np.asarray(lon, dtype=np.float64), np.zeros_like(lat_a))
        return enu[:, :2]

    def to_en(self, lat: float, lon: float) -> Point:
        east, north = self.to_en_many(np.array([lat]), np.array([lon]))[0]
        return float(east), float(north)

    def to_latlon_many(self, east: FloatArray, north: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(lat, lon)`` arrays of the points on the ellipsoid at these east/north metres."""
        e = np.atleast_1d(np.asarray(east, dtype=np.float64))
        n = np.atleast_1d(np.asarray(north, dtype=np.float64))
        # Start on the sphere's drop below the tangent plane, then correct the height.
        up = -(e * e + n * n) / (2.0 * 6_371_000.0)
        lat, lon, h = self._enu.to_geodetic_many(e, n, up)
        for _ in range(_INVERSE_STEPS):
            if float(np.max(np.abs(h))) < 1e-7:
                break  # on the ellipsoid to 0.1 µm
            up = up - h  # d(height)/d(up) is cos(angle to the origin's vertical) ≈ 1
            lat, lon, h = self._enu.to_geodetic_many(e, n, up)
        return lat, lon

    def to_latlon(self, east: float, north: float) -> tuple[float, float]:
        lat, lon = self.to_latlon_many(np.array([east]), np.array([north]))
        return float(lat[0]), float(lon[0])


def bearing_distance(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    """Initial azimuth (degrees clockwise from true north, [0, 360)) and distance (m) of the
    WGS84 geodesic from ``(lat0, lon0)`` to ``(lat, lon)``; ``(0, 0)`` for the same point."""
    azimuth, _, distance = _geod().inv(lon0, lat0, lon, lat)
    if distance == 0.0:
        return 0.0, 0.0
    return float(azimuth) % 360.0, float(distance)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic distance between two WGS84 points on the ellipsoid, in metres."""
    return bearing_distance(lat1, lon1, lat2, lon2)[1]


def area_perimeter_m(outer: Ring, holes: Sequence[Ring] = ()) -> tuple[float, float]:
    """Area (m²) and perimeter (m, holes' edges included) of a ``(lat, lon)`` polygon on
    the WGS84 ellipsoid, its edges taken as geodesics. ``ValueError`` if degenerate."""
    validate_polygon(outer, holes)
    area, perimeter = 0.0, 0.0
    for index, ring in enumerate((outer, *holes)):
        lats = [float(p[0]) for p in ring]
        lons = [float(p[1]) for p in ring]
        signed, length = _geod().polygon_area_perimeter(lons, lats)
        area += abs(float(signed)) * (1.0 if index == 0 else -1.0)
        perimeter += float(length)
    return area, perimeter


def wrap180(angle: float) -> float:
    """``angle`` in degrees, wrapped to (-180, 180]."""
    wrapped = (angle + 180.0) % 360.0 - 180.0
    return 180.0 if wrapped == -180.0 else wrapped


def circle_points(center: Point, radius: float, n: int = 36) -> list[Point]:
    """``n`` vertices of a circle, clockwise from north (an orbit, as a polygon for checks)."""
    return [
        (
            center[0] + radius * math.sin(2.0 * math.pi * k / n),
            center[1] + radius * math.cos(2.0 * math.pi * k / n),
        )
        for k in range(n)
    ]


# -- polygons -----------------------------------------------------------------------------

_Key = tuple[Point, ...]


def _ring_key(ring: Ring, what: str) -> _Key:
    points = [(float(x), float(y)) for x, y in ring]
    if len(points) > 1 and points[0] == points[-1]:
        points = points[:-1]  # GeoJSON closes its rings; the polygon is the same
    if not all(math.isfinite(x) and math.isfinite(y) for x, y in points):
        raise ValueError(f"{what} has a non-finite coordinate")
    if len(set(points)) < 3:
        raise ValueError(f"{what} needs at least three distinct vertices, got {len(set(points))}")
    return tuple(points)


@lru_cache(maxsize=4096)
def _shape(outer: _Key, holes: tuple[_Key, ...]) -> shapely.Polygon:
    for index, ring in enumerate((outer, *holes)):
        shape = shapely.Polygon(ring)
        min_x, min_y, max_x, max_y = shape.bounds
        # relative, so that vertices collinear up to rounding (45.1 − 45.0 ≠ 45.2 − 45.1)
        # are degenerate too
        if shape.area <= 1e-12 * max(max_x - min_x, max_y - min_y) ** 2:
            what = "the outer ring" if index == 0 else f"hole {index}"
            raise ValueError(
                f"{what} has zero area (collinear vertices, or a ring crossing itself so "
                "that its halves cancel)"
            )
    polygon = shapely.Polygon(outer, holes)
    if not polygon.is_valid:
        raise ValueError(f"invalid polygon: {shapely.is_valid_reason(polygon)}")
    shapely.prepare(polygon)  # cached, so repeated tests against one zone are fast
    return polygon


def polygon_shape(outer: Ring, holes: Sequence[Ring] = ()) -> shapely.Polygon:
    """The validated, prepared shapely polygon (cached); ``ValueError`` if degenerate."""
    outer_key = _ring_key(outer, "the outer ring")
    hole_keys = tuple(_ring_key(h, f"hole {i + 1}") for i, h in enumerate(holes))
    return _shape(outer_key, hole_keys)


def validate_polygon(outer: Ring, holes: Sequence[Ring] = ()) -> None:
    """Raise ``ValueError`` (saying why) if the polygon is degenerate; else nothing."""
    polygon_shape(outer, holes)


def point_in_polygon(point: Point, outer: Ring, holes: Sequence[Ring] = ()) -> bool:
    """Whether ``point`` lies in the polygon ``outer`` minus ``holes`` (GeoJSON rings).

    Edge rule: a point on an edge or a vertex — of the outer ring or of a hole — counts as
    **inside**; a point strictly inside a hole is outside. The test is exact on the given
    doubles (GEOS robust predicates), so every caller gets the same answer for the same
    numbers. ``ValueError`` for a degenerate polygon (see the module docstring).
    """
    polygon = polygon_shape(outer, holes)
    return bool(shapely.intersects_xy(polygon, float(point[0]), float(point[1])))


def segment_polygon_distance(a: Point, b: Point, outer: Ring, holes: Sequence[Ring] = ()) -> float:
    """Shortest distance from the segment a–b to the polygon's area: 0 when the segment
    touches an edge, crosses it or lies inside; inside a hole, the distance to the hole's
    edge. ``a == b`` is a point."""
    polygon = polygon_shape(outer, holes)
    path = shapely.Point(a) if a == b else shapely.LineString([a, b])
    return float(shapely.distance(polygon, path))


def segment_spans_inside(
    p1: Point, p2: Point, outer: Ring, holes: Sequence[Ring] = ()
) -> list[tuple[float, float]]:
    """Parameter intervals ``(t_in, t_out)`` ⊂ [0, 1] along ``p1→p2`` that run through the
    polygon's interior, in order, touching ones merged.

    A segment running along an edge or touching a vertex passes *through* nothing, so it
    gives no interval (unlike ``point_in_polygon``, where the edge counts as inside: a
    sound path grazing a wall is not blocked by it). A zero-length segment gives none.
    """
    polygon = polygon_shape(outer, holes)
    if p1 == p2:
        return []
    line = shapely.LineString([p1, p2])
    if not shapely.intersects(polygon, line):  # prepared: the common, cheap answer
        return []
    dx, dy = p2[0] - p1[0], p2[1] - p1[1]
    length2 = dx * dx + dy * dy
    spans: list[tuple[float, float]] = []
    for piece in shapely.get_parts(shapely.intersection(line, polygon)):
        if not isinstance(piece, shapely.LineString) or piece.length <= 0.0:
            continue  # a vertex touched
        (xa, ya), (xb, yb) = piece.coords[0], piece.coords[-1]
        if not shapely.contains_xy(polygon, (xa + xb) / 2.0, (ya + yb) / 2.0):
            continue  # runs along an edge
        t_a = ((xa - p1[0]) * dx + (ya - p1[1]) * dy) / length2
        t_b = ((xb - p1[0]) * dx + (yb - p1[1]) * dy) / length2
        spans.append((max(0.0, min(t_a, t_b)), min(1.0, max(t_a, t_b))))
    spans.sort()
    merged: list[tuple[float, float]] = []
    for t_in, t_out in spans:
        if merged and t_in <= merged[-1][1] + 1e-12:
            merged[-1] = (merged[-1][0], max(merged[-1][1], t_out))
        else:
            merged.append((t_in, t_out))
    return merged
