"""Where a sound may be when no point can be fixed: an honest area, never a made-up point.

With fewer than three sensors, or a TDOA fit whose residuals or geometry fail, a point
would claim a precision the data do not have (a level-weighted centroid of two lamp posts
once put a shot 184 m from where it was fired). Instead the hub reports the region that is
consistent with what it does know:

* every sensor that heard the sound is within ``hearing_m`` of it;
* the onset differences are those of sound travel, within ``tolerance_s`` (so the sensor
  that heard it first is the nearest, and two sensors pin it to a hyperbolic band).

A sustained sound (a siren, a car alarm) often has no sharp onset: the node reports where it
finds a rise in the first window over the threshold, or that window's start, on a 0.25 s hop
(85 m of travel). Its area (``use_timing=False``) takes the hearing ranges alone.

The region is sampled on a grid and summarised by its centroid and the ellipse around it
that covers every consistent sample (``method="area"``, ``radius_m`` its major semi-axis).
When no sample fits every onset (a bad clock, an echo), the timing constraint is relaxed to
"nearest to the first sensor", then dropped. Levels are not used: directivity, walls and
uncalibrated microphones make "loudest" a poor guide to "nearest". Sensors that did not
report the sound are not used either: a missed detection is not silence.
"""

from __future__ import annotations

import math

import numpy as np

from ouie.hub.fixes import Fix, FloatArray, Observation, axes_angle

#: Samples across the widest side of the search box (the grid step is its width / this).
GRID_SAMPLES = 80
MIN_STEP_M = 1.0


def _grid(positions: FloatArray, hearing_m: float) -> tuple[FloatArray | None, float]:
    lo = np.max(positions[:, :2] - hearing_m, axis=0)
    hi = np.min(positions[:, :2] + hearing_m, axis=0)
    if np.any(hi <= lo):
        return None, 0.0
    step = max(MIN_STEP_M, float(np.max(hi - lo)) / GRID_SAMPLES)
    xs = np.arange(lo[0], hi[0] + step / 2, step)
    ys = np.arange(lo[1], hi[1] + step / 2, step)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    return np.column_stack([gx.ravel(), gy.ravel()]), step


def _covering_ellipse(points: FloatArray, step: float) -> tuple[float, float, float, float, float]:
    """Centre (east, north), semi-axes (major, minor) and angle of an ellipse around the
    points, axes along their principal directions, scaled so every point lies inside."""
    centre = points.mean(axis=0)
    offsets = points - centre
    if len(points) > 1:
        cov = np.cov(offsets.T) + 1e-9 * np.eye(2)
        _, vecs = np.linalg.eigh(cov)
        major_dir, minor_dir = vecs[:, 1], vecs[:, 0]
    else:
        major_dir, minor_dir = np.array([0.0, 1.0]), np.array([1.0, 0.0])
    u = np.abs(offsets @ major_dir)
    v = np.abs(offsets @ minor_dir)
    pad = step * math.sqrt(0.5)
    a = float(u.max()) + pad
    b = float(v.max()) + pad
    # points at the corners of the box |u| ≤ a, |v| ≤ b need the ellipse scaled by up to √2;
    # scale by what the samples actually need
    need = float(np.max((u / a) ** 2 + (v / b) ** 2))
    scale = math.sqrt(max(1.0, need))
    a, b = a * scale, b * scale
    if b > a:
        a, b = b, a
        major_dir = minor_dir
    angle = axes_angle(float(major_dir[0]), float(major_dir[1]))
    return float(centre[0]), float(centre[1]), a, b, angle


def approximate_area(
    observations: list[Observation],
    speed_of_sound_m_s: float,
    *,
    hearing_m: float,
    tolerance_s: float,
    source_up: float = 0.0,
    use_timing: bool = True,
) -> Fix:
    """The region ``observations`` are consistent with, as a ``method="area"`` fix
    (``use_timing=False``: with the hearing ranges alone, for onsets too vague to compare)."""
    if not observations:
        raise ValueError("no observations")
    c = speed_of_sound_m_s
    positions = np.array([[o.east, o.north, o.up] for o in observations], dtype=np.float64)
    onsets = np.array([o.onset_s for o in observations], dtype=np.float64)
    ref = int(np.argmin(onsets))
    # sensors that all heard it yet stand further apart than two hearing ranges: the sound
    # carried further than assumed, so widen the range rather than find nothing
    widest = float(np.max(np.linalg.norm(positions[:, None, :2] - positions[None, :, :2], axis=2)))
    hearing = max(hearing_m, 0.5 * widest + MIN_STEP_M)
    grid, step = _grid(positions, hearing)
    assert grid is not None  # the widened range makes every box overlap
    ranges = np.sqrt(
        (grid[:, None, 0] - positions[None, :, 0]) ** 2
        + (grid[:, None, 1] - positions[None, :, 1]) ** 2
        + (source_up - positions[None, :, 2]) ** 2
    )  # [points, sensors]
    heard = np.all(ranges <= hearing, axis=1)
    slack_m = tolerance_s * c + step
    expected = (onsets - onsets[ref]) * c
    timing = np.all(np.abs((ranges - ranges[:, ref : ref + 1]) - expected) <= slack_m, axis=1)
    nearest_first = np.all(ranges[:, ref : ref + 1] <= ranges + slack_m, axis=1)
    region = heard & timing if use_timing else heard
    if not region.any():
        region = heard & nearest_first
    if not region.any():
        region = heard
    if not region.any():  # cannot happen with the widened range; be safe anyway
        region = ranges[:, ref] <= hearing
    points = grid[region]
    east, north, major, minor, angle = _covering_ellipse(points, step)
    centre_range = math.sqrt(
        (east - positions[ref, 0]) ** 2
        + (north - positions[ref, 1]) ** 2
        + (source_up - positions[ref, 2]) ** 2
    )
    return Fix(
        east=east,
        north=north,
        method="area",
        radius_m=major,
        ellipse_major_m=major,
        ellipse_minor_m=minor,
        ellipse_angle_deg=angle,
        used=tuple(range(len(observations))),
        t0_s=float(onsets[ref]) - centre_range / c,
    )
