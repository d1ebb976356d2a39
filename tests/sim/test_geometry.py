from __future__ import annotations

import pytest

from ouie.sim.geo import LocalFrame, distance_m
from ouie.sim.geometry import crossing_span, point_in_polygon, segment_intersection

SQUARE = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]
U_SHAPE = [(0, 0), (30, 0), (30, 30), (20, 30), (20, 10), (10, 10), (10, 30), (0, 30)]


def test_segment_intersection() -> None:
    assert segment_intersection((0, 0), (10, 10), (0, 10), (10, 0)) == pytest.approx(0.5)
    assert segment_intersection((0, 0), (1, 1), (0, 10), (10, 0)) is None
    assert segment_intersection((0, 0), (10, 0), (0, 1), (10, 1)) is None  # parallel
    assert segment_intersection((0, 0), (10, 0), (5, 0), (20, 0)) == pytest.approx(0.5)


def test_point_in_polygon() -> None:
    assert point_in_polygon((5, 5), SQUARE)
    assert not point_in_polygon((15, 5), SQUARE)
    assert point_in_polygon((10, 5), SQUARE)  # boundary counts as inside
    assert not point_in_polygon((15, 20), U_SHAPE)  # in the notch


def test_crossing_span() -> None:
    assert crossing_span((-5, 5), (15, 5), SQUARE) == pytest.approx((0.25, 0.75))
    assert crossing_span((-5, 20), (15, 20), SQUARE) is None
    assert crossing_span((-5, 0), (15, 0), SQUARE) is None  # grazes an edge
    assert crossing_span((5, 5), (15, 5), SQUARE) == pytest.approx((0.0, 0.5))
    # Through both arms of the U: one screen spanning first entry to last exit.
    assert crossing_span((-5, 20), (35, 20), U_SHAPE) == pytest.approx((0.125, 0.875))
    # Inside the notch only: no building crossed.
    assert crossing_span((12, 20), (18, 20), U_SHAPE) is None


def test_local_frame_round_trip_and_scale() -> None:
    frame = LocalFrame(45.44, 4.387)
    lat, lon = frame.to_latlon(120.0, -75.0)
    assert frame.to_xy(lat, lon) == pytest.approx((120.0, -75.0), abs=1e-6)
    # One arc-second of latitude is about 30.9 m at 45° N.
    assert distance_m(45.44, 4.387, 45.44 + 1 / 3600, 4.387) == pytest.approx(30.87, abs=0.05)
