from __future__ import annotations

import math

import numpy as np

from ouie.core.geo import ENUFrame, speed_of_sound
from ouie.core.geometry import distance_m


def test_enu_round_trip_and_axes() -> None:
    frame = ENUFrame(48.8566, 2.3522, 35.0)
    east, north, up = frame.to_enu(48.8566, 2.3522, 35.0)
    assert max(abs(east), abs(north), abs(up)) < 1e-6
    lat, lon, h = frame.to_geodetic(120.0, -80.0, 4.0)
    back = frame.to_enu(lat, lon, h)
    assert np.allclose(back, (120.0, -80.0, 4.0), atol=1e-6)
    # 0.001° of latitude ≈ 111.2 m north; longitude shrinks with cos(lat)
    assert math.isclose(frame.to_enu(48.8576, 2.3522, 35.0)[1], 111.2, abs_tol=0.3)
    assert math.isclose(frame.to_enu(48.8566, 2.3532, 35.0)[0], 73.3, abs_tol=0.3)


def test_distance_and_speed_of_sound() -> None:
    assert math.isclose(distance_m(48.8566, 2.3522, 48.8576, 2.3522), 111.2, abs_tol=0.3)
    assert math.isclose(speed_of_sound(20.0), 343.2, abs_tol=0.2)
