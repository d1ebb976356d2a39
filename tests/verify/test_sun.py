"""The sun's elevation for the drone's night rule (frames and polygons: tests/core)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from ouie.verify.sun import sun_elevation_deg

ORIGIN = (45.4397, 4.3872)


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
