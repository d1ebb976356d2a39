"""What localisation works on and gives back: observations in, a fix (a point with its 95 %
ellipse) or an approximate area out.

Shared by the TDOA solver (``hub/locate.py``) and the area estimate (``hub/area.py``), so
neither imports the other's internals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

CHI2_2DOF_95 = 5.991464547107979

#: "tdoa": a point fixed from onset differences; "area": no point could be fixed (fewer
#: than three sensors, or a fit whose residuals or geometry failed) and the fix describes
#: the region the sound may have come from, centre and covering ellipse.
Method = Literal["tdoa", "area"]


@dataclass(frozen=True)
class Observation:
    """One sensor's hearing of the sound: position (ENU m), onset (s), strength (any unit)."""

    east: float
    north: float
    up: float
    onset_s: float
    strength: float


@dataclass(frozen=True)
class Fix:
    east: float
    north: float
    method: Method
    radius_m: float  # radius of a circle holding the 95 % region (the major semi-axis for TDOA)
    ellipse_major_m: float | None = None
    ellipse_minor_m: float | None = None
    ellipse_angle_deg: float | None = None  # major axis, degrees clockwise from north
    residual_rms_m: float | None = None
    used: tuple[int, ...] = ()  # indices of the observations the fix used
    t0_s: float | None = None  # emission time, on the observations' onset scale

    @property
    def approximate(self) -> bool:
        return self.method != "tdoa"


def axes_angle(vx: float, vy: float) -> float:
    """Direction of the vector ``(east, north)`` in degrees clockwise from north, in [0, 180)."""
    return math.degrees(math.atan2(vx, vy)) % 180.0
