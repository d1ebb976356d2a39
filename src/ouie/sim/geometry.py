"""Plane geometry the twin needs: does a sound path cross a building footprint, and where.

Small and exact for simple polygons (no holes), so the twin does not need shapely.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

Point = tuple[float, float]
Polygon = Sequence[Point]

_EPS = 1e-9


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def segment_intersection(p1: Point, p2: Point, q1: Point, q2: Point) -> float | None:
    """Parameter ``t`` in [0, 1] along ``p1→p2`` where it meets segment ``q1q2``, else None.

    Collinear overlaps return the first overlapping point.
    """
    rx, ry = p2[0] - p1[0], p2[1] - p1[1]
    sx, sy = q2[0] - q1[0], q2[1] - q1[1]
    denom = rx * sy - ry * sx
    qpx, qpy = q1[0] - p1[0], q1[1] - p1[1]
    if abs(denom) < _EPS:
        if abs(qpx * ry - qpy * rx) > _EPS:
            return None  # parallel, not collinear
        length2 = rx * rx + ry * ry
        if length2 < _EPS:
            return None
        t0 = (qpx * rx + qpy * ry) / length2
        t1 = t0 + (sx * rx + sy * ry) / length2
        lo, hi = min(t0, t1), max(t0, t1)
        if hi < -_EPS or lo > 1 + _EPS:
            return None
        return max(0.0, lo)
    t = (qpx * sy - qpy * sx) / denom
    u = (qpx * ry - qpy * rx) / denom
    if -_EPS <= t <= 1 + _EPS and -_EPS <= u <= 1 + _EPS:
        return min(1.0, max(0.0, t))
    return None


def _on_boundary(point: Point, polygon: Polygon) -> bool:
    x, y = point
    n = len(polygon)
    for i in range(n):
        a, b = polygon[i], polygon[(i + 1) % n]
        if abs(_cross(a, b, point)) < _EPS and (
            min(a[0], b[0]) - _EPS <= x <= max(a[0], b[0]) + _EPS
            and min(a[1], b[1]) - _EPS <= y <= max(a[1], b[1]) + _EPS
        ):
            return True
    return False


def _strictly_inside(point: Point, polygon: Polygon) -> bool:
    x, y = point
    inside = False
    n = len(polygon)
    for i in range(n):
        a, b = polygon[i], polygon[(i + 1) % n]
        if (a[1] > y) != (b[1] > y):
            x_cross = a[0] + (y - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            if x < x_cross:
                inside = not inside
    return inside and not _on_boundary(point, polygon)


def point_in_polygon(point: Point, polygon: Polygon) -> bool:
    """Even-odd rule; points on the boundary count as inside."""
    return _on_boundary(point, polygon) or _strictly_inside(point, polygon)


def crossing_span(p1: Point, p2: Point, polygon: Polygon) -> tuple[float, float] | None:
    """``(t_in, t_out)`` along ``p1→p2`` of the part inside ``polygon``, or None.

    For a concave footprint crossed several times the span runs from the first entry to the
    last exit, which is what an over-the-roof diffraction model needs (one screen per
    building). A segment running along an edge or touching a corner does not cross.
    """
    ts = {0.0, 1.0}
    n = len(polygon)
    for i in range(n):
        t = segment_intersection(p1, p2, polygon[i], polygon[(i + 1) % n])
        if t is not None:
            ts.add(t)
    ordered = sorted(ts)
    inside: list[tuple[float, float]] = []
    for a, b in itertools.pairwise(ordered):
        if b - a < 1e-9:
            continue
        mid = (a + b) / 2.0
        point = (p1[0] + mid * (p2[0] - p1[0]), p1[1] + mid * (p2[1] - p1[1]))
        if _strictly_inside(point, polygon):
            inside.append((a, b))
    if not inside:
        return None
    return inside[0][0], inside[-1][1]


def polygon_area(polygon: Polygon) -> float:
    n = len(polygon)
    return 0.5 * abs(
        sum(
            polygon[i][0] * polygon[(i + 1) % n][1] - polygon[(i + 1) % n][0] * polygon[i][1]
            for i in range(n)
        )
    )
