"""The one geometry module: its edge rule, its errors, and the local frame's accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Geod

from ouie.core.geo import ENUFrame
from ouie.core.geometry import (
    LocalFrame,
    area_perimeter_m,
    bearing_distance,
    circle_points,
    distance_m,
    point_in_polygon,
    segment_polygon_distance,
    segment_spans_inside,
    validate_polygon,
    wrap180,
)

ORIGIN = (45.4397, 4.3872)
SQUARE = [(0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0)]
HOLE = [(40.0, 40.0), (60.0, 40.0), (60.0, 60.0), (40.0, 60.0)]
U_SHAPE = [(0, 0), (30, 0), (30, 30), (20, 30), (20, 10), (10, 10), (10, 30), (0, 30)]


# -- point in polygon ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((10.0, 10.0), True),  # interior
        ((150.0, 50.0), False),  # outside
        ((100.0, 50.0), True),  # on an outer edge
        ((0.0, 0.0), True),  # on an outer vertex
        ((100.0 + 1e-9, 50.0), False),  # just past the edge
        ((50.0, 50.0), False),  # strictly inside the hole
        ((40.0, 50.0), True),  # on the hole's edge: the polygon's boundary, so inside
        ((60.0, 60.0), True),  # on a hole vertex
    ],
)
def test_edge_rule_outer_and_hole(point: tuple[float, float], inside: bool) -> None:
    assert point_in_polygon(point, SQUARE, [HOLE]) is inside


def test_ring_may_be_closed_or_open_and_any_orientation() -> None:
    closed = [*SQUARE, SQUARE[0]]
    clockwise = list(reversed(SQUARE))
    for ring in (SQUARE, closed, clockwise):
        assert point_in_polygon((100.0, 50.0), ring)
        assert not point_in_polygon((101.0, 50.0), ring)


def test_concave_notch_is_outside() -> None:
    assert not point_in_polygon((15.0, 20.0), U_SHAPE)
    assert point_in_polygon((15.0, 10.0), U_SHAPE)  # the notch's floor is an edge
    assert point_in_polygon((5.0, 20.0), U_SHAPE)


def test_lat_lon_zone_edge_is_inside() -> None:
    """The case the console and ``ouie check`` used to disagree on: a sensor on the fence."""
    zone = [(45.4390, 4.3860), (45.4390, 4.3880), (45.4410, 4.3880), (45.4410, 4.3860)]
    assert point_in_polygon((45.4400, 4.3880), zone)  # on the east edge
    assert point_in_polygon((45.4410, 4.3860), zone)  # on a corner
    assert not point_in_polygon((45.4400, 4.3881), zone)


@pytest.mark.parametrize(
    ("outer", "holes", "message"),
    [
        ([(0.0, 0.0), (1.0, 1.0)], [], "at least three distinct vertices"),
        ([(0.0, 0.0), (1.0, 0.0), (0.0, 0.0), (1.0, 0.0)], [], "at least three distinct"),
        ([(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)], [], "zero area"),
        ([(0.0, 0.0), (2.0, 2.0), (2.0, 0.0), (0.0, 2.0)], [], "zero area"),  # figure eight
        ([(0.0, 0.0), (4.0, 4.0), (4.0, 0.0), (0.0, 2.0)], [], "Self-intersection"),
        (SQUARE, [[(200.0, 0.0), (210.0, 0.0), (210.0, 10.0)]], "invalid polygon"),
        (SQUARE, [[(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)]], "hole 1 has zero area"),
        ([(0.0, 0.0), (math.nan, 0.0), (1.0, 1.0)], [], "non-finite"),
        ([], [], "at least three distinct vertices"),
    ],
)
def test_degenerate_polygons_raise(
    outer: list[tuple[float, float]], holes: list[list[tuple[float, float]]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        point_in_polygon((0.5, 0.5), outer, holes)
    with pytest.raises(ValueError, match=message):
        validate_polygon(outer, holes)


# -- segments -----------------------------------------------------------------------------


def test_segment_polygon_distance() -> None:
    assert segment_polygon_distance((-30.0, -10.0), (-30.0, 110.0), SQUARE) == pytest.approx(30.0)
    assert segment_polygon_distance((-50.0, 50.0), (150.0, 50.0), SQUARE) == 0.0  # crosses
    assert segment_polygon_distance((10.0, 10.0), (20.0, 20.0), SQUARE) == 0.0  # inside
    assert segment_polygon_distance((-10.0, 0.0), (0.0, 0.0), SQUARE) == 0.0  # touches
    # Inside the hole: the clearance is to the hole's edge.
    assert segment_polygon_distance((50.0, 45.0), (50.0, 55.0), SQUARE, [HOLE]) == pytest.approx(
        5.0
    )
    assert segment_polygon_distance((-3.0, 4.0), (-3.0, 4.0), SQUARE) == pytest.approx(3.0)


def _pairs(expected: list[tuple[float, float]]) -> list[object]:
    # pytest.approx compares flat sequences only (pytest >= 9.2 refuses nested ones)
    return [pytest.approx(pair) for pair in expected]


def test_segment_spans_inside() -> None:
    assert segment_spans_inside((-50.0, 50.0), (150.0, 50.0), SQUARE) == _pairs([(0.25, 0.75)])
    assert segment_spans_inside((-50.0, 0.0), (150.0, 0.0), SQUARE) == []  # along an edge
    assert segment_spans_inside((-10.0, 10.0), (10.0, -10.0), SQUARE) == []  # touches a vertex
    assert segment_spans_inside((50.0, 20.0), (150.0, 20.0), SQUARE) == _pairs([(0.0, 0.5)])
    assert segment_spans_inside((5.0, 5.0), (5.0, 5.0), SQUARE) == []
    # Both arms of a U, and across a hole: two spans each.
    assert segment_spans_inside((-5.0, 20.0), (35.0, 20.0), U_SHAPE) == _pairs(
        [(0.125, 0.375), (0.625, 0.875)]
    )
    assert segment_spans_inside((0.0, 50.0), (100.0, 50.0), SQUARE, [HOLE]) == _pairs(
        [(0.0, 0.4), (0.6, 1.0)]
    )


def test_circle_points() -> None:
    ring = circle_points((10.0, 20.0), 5.0, 4)
    assert ring == _pairs([(10.0, 25.0), (15.0, 20.0), (10.0, 15.0), (5.0, 20.0)])


# -- frames, distances, bearings ----------------------------------------------------------


@pytest.mark.parametrize("azimuth", [0.0, 37.0, 90.0, 181.0, 270.0, 333.0])
def test_local_frame_round_trip_under_a_millimetre_over_5_km(azimuth: float) -> None:
    frame = LocalFrame(*ORIGIN)
    for distance in (1.0, 250.0, 2500.0, 5000.0):
        east = distance * math.sin(math.radians(azimuth))
        north = distance * math.cos(math.radians(azimuth))
        lat, lon = frame.to_latlon(east, north)
        back = frame.to_en(lat, lon)
        assert math.hypot(back[0] - east, back[1] - north) < 1e-3
        lat2, lon2 = frame.to_latlon(*back)
        assert distance_m(lat, lon, lat2, lon2) < 1e-3


def test_local_frame_is_the_hubs_enu_frame_on_the_ellipsoid() -> None:
    frame, enu = LocalFrame(*ORIGIN), ENUFrame(*ORIGIN)
    lat, lon = 45.4521, 4.3701
    east, north, _ = enu.to_enu(lat, lon, 0.0)
    assert frame.to_en(lat, lon) == pytest.approx((east, north), abs=1e-9)
    lats, lons = frame.to_latlon_many(np.array([0.0, 10.0]), np.array([0.0, -20.0]))
    assert (lats[0], lons[0]) == pytest.approx(ORIGIN, abs=1e-12)
    expected = np.array([[0.0, 0.0], [10.0, -20.0]])
    assert frame.to_en_many(lats, lons) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("azimuth", [0.0, 90.0, 181.0, 333.0])
def test_frame_matches_the_geodesic_to_a_centimetre_over_5_km(azimuth: float) -> None:
    lon, lat, _ = Geod(ellps="WGS84").fwd(ORIGIN[1], ORIGIN[0], azimuth, 5000.0)
    east, north = LocalFrame(*ORIGIN).to_en(lat, lon)
    assert math.hypot(east, north) == pytest.approx(5000.0, abs=0.01)
    assert wrap180(math.degrees(math.atan2(east, north)) - azimuth) == pytest.approx(0.0, abs=0.01)


def test_bearing_and_distance() -> None:
    bearing, dist = bearing_distance(45.44, 4.387, 45.44 + 1 / 3600, 4.387)
    assert bearing == pytest.approx(0.0, abs=1e-9) and dist == pytest.approx(30.87, abs=0.05)
    bearing, _ = bearing_distance(45.44, 4.387, 45.44, 4.388)
    assert bearing == pytest.approx(90.0, abs=0.01)
    bearing, _ = bearing_distance(45.44, 4.387, 45.43, 4.387)
    assert bearing == pytest.approx(180.0)
    assert bearing_distance(45.44, 4.387, 45.44, 4.387) == (0.0, 0.0)
    assert distance_m(48.8566, 2.3522, 48.8576, 2.3522) == pytest.approx(111.2, abs=0.3)


def test_area_and_perimeter_of_a_lat_lon_zone() -> None:
    frame = LocalFrame(*ORIGIN)
    corners = [frame.to_latlon(e, n) for e, n in SQUARE]
    hole = [frame.to_latlon(e, n) for e, n in HOLE]
    area, perimeter = area_perimeter_m(corners)
    assert area == pytest.approx(10_000.0, rel=1e-4) and perimeter == pytest.approx(400.0, rel=1e-4)
    area, perimeter = area_perimeter_m([*corners, corners[0]], [hole])
    assert area == pytest.approx(9_600.0, rel=1e-4) and perimeter == pytest.approx(480.0, rel=1e-4)
    with pytest.raises(ValueError, match="zero area"):
        area_perimeter_m([(45.0, 4.0), (45.1, 4.1), (45.2, 4.2)])  # collinear up to rounding


def test_wrap180() -> None:
    assert wrap180(190.0) == -170.0
    assert wrap180(-180.0) == 180.0
    assert wrap180(540.0) == 180.0
    assert wrap180(-45.0) == -45.0


def test_frame_rejects_impossible_origins() -> None:
    with pytest.raises(ValueError, match="not a WGS84 position"):
        LocalFrame(91.0, 0.0)
