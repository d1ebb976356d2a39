"""The twin's one geometric decision of its own: which stretch of a path a building blocks.

Frames, distances and polygons are ``ouie.core.geometry``'s (tests/core/test_geometry.py).
"""

from __future__ import annotations

import pytest

from ouie.sim.acoustics import crossing_span

SQUARE = ((0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0))
U_SHAPE = ((0, 0), (30, 0), (30, 30), (20, 30), (20, 10), (10, 10), (10, 30), (0, 30))


def test_crossing_span() -> None:
    assert crossing_span((-5, 5), (15, 5), SQUARE) == pytest.approx((0.25, 0.75))
    assert crossing_span((-5, 20), (15, 20), SQUARE) is None
    assert crossing_span((-5, 0), (15, 0), SQUARE) is None  # grazes an edge
    assert crossing_span((-5, 5), (5, -5), SQUARE) is None  # touches a corner
    assert crossing_span((5, 5), (15, 5), SQUARE) == pytest.approx((0.0, 0.5))
    # Through both arms of the U: one screen spanning first entry to last exit.
    assert crossing_span((-5, 20), (35, 20), U_SHAPE) == pytest.approx((0.125, 0.875))
    # Inside the notch only: no building crossed.
    assert crossing_span((12, 20), (18, 20), U_SHAPE) is None
