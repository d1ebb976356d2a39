"""Small-area geometry: local frame against a geodesic, polygons, the sun."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from ouie.verify.geometry import (
    LocalFrame,
    bearing_distance,
    point_in_polygon,
    segment_intersects_polygon,
    segment_polygon_distance,
    segments_intersect,
    sun_elevation_deg,
    wrap180,
)
from tests._services import require_module

ORIGIN = (45.4397, 4.3872)


@pytest.mark.parametrize("azimuth", [0.0, 37.0, 90.0, 181.0, 270.0, 333.0])
@pytest.mark.parametrize("distance", [10.0, 300.0, 2500.0])
def test_bearing_and_distance_match_the_geodesic(azimuth: float, distance: float) -> None:
    pyproj = require_module("pyproj", "the geodesic reference needs pyproj (hub extra)")
    geod = pyproj.Geod(ellps="WGS84")
    lon, lat, _ = geod.fwd(ORIGIN[1], ORIGIN[0], azimuth, distance)
    bearing, dist = bearing_distance(ORIGIN[0], ORIGIN[1], lat, lon)
    assert dist == pytest.approx(distance, abs=0.01)
    assert wrap180(bearing - azimuth) == pytest.approx(0.0, abs=0.03)


def test_frame_round_trip() -> None:
    frame = LocalFrame(*ORIGIN)
    lat, lon = frame.to_latlon(123.4, -567.8)
    east, north = frame.to_en(lat, lon)
    assert (east, north) == pytest.approx((123.4, -567.8), abs=1e-6)


def test_wrap180() -> None:
    assert wrap180(190.0) == -170.0
    assert wrap180(-180.0) == 180.0
    assert wrap180(540.0) == 180.0
    assert wrap180(-45.0) == -45.0


SQUARE_WITH_HOLE = [
    [(0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0)],
    [(40.0, 40.0), (60.0, 40.0), (60.0, 60.0), (40.0, 60.0)],
]


def test_point_in_polygon_with_hole() -> None:
    assert point_in_polygon((10.0, 10.0), SQUARE_WITH_HOLE)
    assert not point_in_polygon((50.0, 50.0), SQUARE_WITH_HOLE)  # in the hole
    assert not point_in_polygon((150.0, 50.0), SQUARE_WITH_HOLE)
    concave = [[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (5.0, 2.0), (0.0, 10.0)]]
    assert not point_in_polygon((5.0, 8.0), concave)
    assert point_in_polygon((5.0, 1.0), concave)


def test_segment_intersection_cases() -> None:
    assert segments_intersect((0, 0), (10, 10), (0, 10), (10, 0))  # crossing
    assert not segments_intersect((0, 0), (10, 0), (0, 1), (10, 1))  # parallel
    assert segments_intersect((0, 0), (10, 0), (5, 0), (15, 0))  # collinear overlap
    assert segments_intersect((0, 0), (10, 0), (10, 0), (10, 5))  # touching end
    assert not segments_intersect((0, 0), (4, 0), (5, 0), (15, 0))  # collinear apart


def test_segment_against_polygon() -> None:
    square = [SQUARE_WITH_HOLE[0]]
    assert segment_intersects_polygon((-50.0, 50.0), (150.0, 50.0), square)  # crosses
    assert segment_intersects_polygon((10.0, 10.0), (20.0, 20.0), square)  # inside
    assert not segment_intersects_polygon((-50.0, -50.0), (-10.0, 150.0), square)
    assert segment_polygon_distance((-30.0, -10.0), (-30.0, 110.0), square) == pytest.approx(30.0)
    assert segment_polygon_distance((-50.0, 50.0), (150.0, 50.0), square) == 0.0


def test_sun_elevation() -> None:
    # Solar noon at the June solstice in Saint-Étienne: 90 − 45.44 + 23.44 ≈ 68°.
    noon = datetime(2026, 6, 21, 11, 45, tzinfo=UTC)
    assert sun_elevation_deg(*ORIGIN, noon) == pytest.approx(68.0, abs=0.6)
    midnight = datetime(2026, 6, 21, 23, 45, tzinfo=UTC)
    assert sun_elevation_deg(*ORIGIN, midnight) < -15.0
    # December, 17:30 local (16:30 UTC): after sunset, before the end of civil twilight.
    dusk = datetime(2026, 12, 21, 16, 30, tzinfo=UTC)
    assert -6.0 < sun_elevation_deg(*ORIGIN, dusk) < 0.0
    assert math.isfinite(sun_elevation_deg(-33.9, 151.2, noon))
