"""TDOA localisation against seeded synthetic geometry with known ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ouie.core.geo import speed_of_sound
from ouie.hub.locate import Observation, locate

C = speed_of_sound(15.0)
MOUNT = 4.0


def _trial(rng: np.random.Generator, n: int, jitter_s: float, radius: float = 75.0):  # type: ignore[no-untyped-def]
    # n sensors scattered in a 150 m wide area, source inside it
    sensors = rng.uniform(-radius, radius, size=(n, 2))
    source = rng.uniform(-0.8 * radius, 0.8 * radius, size=2)
    t0 = 1000.0
    obs = []
    for sx, sy in sensors:
        d = math.sqrt((sx - source[0]) ** 2 + (sy - source[1]) ** 2 + (MOUNT - 1.0) ** 2)
        onset = t0 + d / C + rng.normal(0.0, jitter_s)
        obs.append(Observation(sx, sy, MOUNT, onset, -20 * math.log10(d)))
    return obs, source


def _errors(seed: int, trials: int, n: int, jitter_s: float) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(seed)
    errors, covered = [], 0
    for _ in range(trials):
        obs, source = _trial(rng, n, jitter_s)
        fix = locate(obs, C, onset_sigma_s=max(jitter_s, 1e-4), source_up=1.0)
        error = math.hypot(fix.east - source[0], fix.north - source[1])
        errors.append(error)
        covered += error <= fix.radius_m
    return np.array(errors), covered / trials


@pytest.mark.parametrize("n", [4, 5, 6])
def test_median_error_within_5_m_at_1_ms_jitter(n: int) -> None:
    errors, _ = _errors(seed=n, trials=200, n=n, jitter_s=0.001)
    assert np.median(errors) <= 5.0, np.median(errors)


def test_exact_onsets_give_exact_position() -> None:
    errors, _ = _errors(seed=1, trials=50, n=4, jitter_s=0.0)
    assert np.median(errors) < 0.01


def test_ellipse_covers_truth_about_95_percent() -> None:
    _, coverage = _errors(seed=7, trials=300, n=6, jitter_s=0.002)
    assert coverage >= 0.85, coverage  # circle of the major axis: at least the ellipse's 95 %


def test_one_bad_onset_is_rejected() -> None:
    rng = np.random.default_rng(3)
    obs, source = _trial(rng, 6, 0.0005)
    bad = obs[2]
    obs[2] = Observation(bad.east, bad.north, bad.up, bad.onset_s + 0.08, bad.strength)  # 27 m late
    fix = locate(obs, C, onset_sigma_s=0.001, source_up=1.0)
    assert fix.method == "tdoa"
    assert 2 not in fix.used
    assert math.hypot(fix.east - source[0], fix.north - source[1]) < 2.0


def test_fallback_with_two_sensors() -> None:
    obs = [Observation(0, 0, 4, 0.0, -30.0), Observation(50, 0, 4, 0.1, -20.0)]
    fix = locate(obs, C, fallback_radius_m=120.0)
    assert (fix.method, fix.east, fix.radius_m) == ("strongest", 50, 120.0)


def test_three_sensors_locate_with_prior_ellipse() -> None:
    rng = np.random.default_rng(11)
    obs, source = _trial(rng, 3, 0.0)
    fix = locate(obs, C, onset_sigma_s=0.001, source_up=1.0)
    assert fix.method in {"tdoa", "strongest"}
    if fix.method == "tdoa":
        assert fix.ellipse_major_m is not None and fix.ellipse_major_m > 0
        # exact onsets, 3 sensors: the fix is one of the (up to two) exact solutions
        assert math.hypot(fix.east - source[0], fix.north - source[1]) < 1.0 or fix.radius_m > 1.0


def test_fallback_places_a_source_between_two_equally_loud_sensors() -> None:
    from ouie.hub.locate import Observation, fallback

    left = Observation(east=0.0, north=0.0, up=4.0, onset_s=0.0, strength=-20.0)
    right = Observation(east=40.0, north=0.0, up=4.0, onset_s=0.0, strength=-20.0)
    far = Observation(east=0.0, north=300.0, up=4.0, onset_s=0.0, strength=-45.0)
    fix = fallback([left, right, far], radius_m=150.0)
    assert fix.method == "strongest"
    assert (fix.east, fix.north) == (20.0, 0.0)
    assert fix.used == (0, 1)
    louder = fallback([left, Observation(40.0, 0.0, 4.0, 0.0, -23.0)], radius_m=150.0)
    assert 0.0 < louder.east < 20.0  # pulled towards the louder sensor


def test_batched_and_single_fits_agree_and_share_one_model() -> None:
    # locate_many, consistent and locate all evaluate the same residual model
    from ouie.hub.locate import consistent, locate_many

    rng = np.random.default_rng(7)
    problems = [_trial(rng, n, 0.0005)[0] for n in (4, 4, 5, 6, 3, 4)]
    batched = locate_many(problems, C, onset_sigma_s=0.0005, source_up=1.0)
    for obs, fix in zip(problems, batched, strict=True):
        alone = locate(obs, C, onset_sigma_s=0.0005, source_up=1.0)
        assert fix.method == alone.method
        assert math.hypot(fix.east - alone.east, fix.north - alone.north) < 0.05
    obs = problems[3]
    positions = np.array([[o.east, o.north, o.up] for o in obs])
    onsets = np.array([o.onset_s for o in obs])
    assert consistent(positions, onsets, C, 1.0, max_residual_m=1.0)
    onsets[2] += 0.05  # a late echo: 17 m of range no source position explains
    assert not consistent(positions, onsets, C, 1.0, max_residual_m=1.0)
