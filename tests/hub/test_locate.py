"""TDOA localisation against seeded synthetic geometry with known ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ouie.core.geo import speed_of_sound
from ouie.hub.locate import Observation, locate, locate_many

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


def _inside(fix, east: float, north: float) -> bool:  # type: ignore[no-untyped-def]
    """Whether (east, north) lies in the fix's ellipse (angle: major axis from north)."""
    angle = math.radians(fix.ellipse_angle_deg)
    major = np.array([math.sin(angle), math.cos(angle)])
    minor = np.array([math.cos(angle), -math.sin(angle)])
    offset = np.array([east - fix.east, north - fix.north])
    u, v = offset @ major, offset @ minor
    return bool((u / fix.ellipse_major_m) ** 2 + (v / fix.ellipse_minor_m) ** 2 <= 1.0)


def test_two_sensors_give_the_consistent_area_not_a_point() -> None:
    source = (-20.0, 30.0)
    sensors = [(0.0, 0.0), (50.0, 0.0)]
    obs = [
        Observation(x, y, MOUNT, math.dist((x, y, MOUNT), (*source, 1.0)) / C, -30.0)
        for x, y in sensors
    ]
    fix = locate(obs, C, fallback_radius_m=120.0, source_up=1.0)
    assert fix.method == "area" and fix.approximate
    assert _inside(fix, *source)
    # the first sensor heard it first: the area lies on its side, not between the two
    assert fix.east < 25.0
    assert fix.radius_m == fix.ellipse_major_m and fix.radius_m <= 2 * 120.0


def test_one_sensor_area_is_its_hearing_disc() -> None:
    fix = locate([Observation(10.0, -5.0, MOUNT, 0.0, -20.0)], C, fallback_radius_m=100.0)
    assert fix.method == "area"
    assert math.hypot(fix.east - 10.0, fix.north + 5.0) < 2.0
    assert 95.0 <= fix.radius_m <= 110.0
    assert fix.ellipse_minor_m is not None and fix.ellipse_minor_m > 90.0


def test_onsets_no_source_explains_give_an_area() -> None:
    rng = np.random.default_rng(5)
    obs, _ = _trial(rng, 5, 0.0)
    # two clocks far off: no position fits, and no point is made up
    obs[1] = Observation(obs[1].east, obs[1].north, MOUNT, obs[1].onset_s + 0.3, 0.0)
    obs[3] = Observation(obs[3].east, obs[3].north, MOUNT, obs[3].onset_s - 0.25, 0.0)
    fix = locate(obs, C, onset_sigma_s=0.001, source_up=1.0, timing_tolerance_s=0.01)
    assert fix.method == "area"
    assert fix.radius_m > 10.0


def test_three_sensors_locate_with_prior_ellipse() -> None:
    rng = np.random.default_rng(11)
    obs, source = _trial(rng, 3, 0.0)
    fix = locate(obs, C, onset_sigma_s=0.001, source_up=1.0)
    assert fix.method in {"tdoa", "area"}
    if fix.method == "tdoa":
        assert fix.ellipse_major_m is not None and fix.ellipse_major_m > 0
        # exact onsets, 3 sensors: the fix is one of the (up to two) exact solutions
        assert math.hypot(fix.east - source[0], fix.north - source[1]) < 1.0 or fix.radius_m > 1.0


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


def test_three_sensors_whose_hyperbolae_cross_twice_give_an_area_not_the_wrong_crossing() -> None:
    # the twin's square: a bang at (25, 1) heard by three far sensors only; its two time
    # differences also fit (4, 52) exactly, where the fit used to land (55 m off, 19 m ellipse)
    sensors = [(85.6, 74.2), (133.8, 105.8), (-99.7, 6.0)]
    obs = []
    for sx, sy in sensors:
        d = math.sqrt((sx - 25.0) ** 2 + (sy - 1.0) ** 2 + (MOUNT - 1.5) ** 2)
        obs.append(Observation(sx, sy, MOUNT, 100.0 + d / C, -20 * math.log10(d)))
    fix = locate(obs, C, onset_sigma_s=0.002, source_up=1.5)
    assert fix.method == "area"
    assert math.hypot(fix.east - 25.0, fix.north - 1.0) <= fix.radius_m  # it holds the source


def test_a_three_sensor_fix_is_never_on_the_wrong_crossing() -> None:
    rng = np.random.default_rng(23)
    located = 0
    for _ in range(60):
        obs, source = _trial(rng, 3, 0.0)
        fix = locate(obs, C, onset_sigma_s=0.001, source_up=1.0)
        error = math.hypot(fix.east - source[0], fix.north - source[1])
        if fix.method == "tdoa":
            located += 1
            assert error < 1.0
        else:
            assert error <= fix.radius_m
    assert located >= 10  # a single crossing still gives a point


def test_an_area_of_its_own_hearing_range_for_a_sound_that_carries_further() -> None:
    # a gunshot heard by one sensor 300 m away: the default 150 m disc would miss it
    sensor = (0.0, 0.0)
    source = (300.0, 20.0)
    obs = [Observation(*sensor, MOUNT, 0.0, -30.0)]
    short = locate(obs, C, fallback_radius_m=150.0, source_up=1.0)
    assert not _inside(short, *source)
    wide = locate(obs, C, fallback_radius_m=150.0, source_up=1.0, area_hearing_m=400.0)
    assert wide.method == "area" and _inside(wide, *source)
    assert 395.0 <= wide.radius_m <= 410.0


def test_without_timing_vague_onsets_still_give_an_area_holding_the_source() -> None:
    # a siren: each onset is the start of its first window over the threshold, on a 0.25 s
    # hop, so the far sensor may well report it first
    source = (-60.0, 10.0)
    sensors = [(0.0, 0.0), (80.0, 0.0), (0.0, 80.0), (-120.0, 40.0)]
    travel = [math.dist((x, y, MOUNT), (*source, 1.0)) / C for x, y in sensors]
    late = [0.5, 0.0, 0.25, 0.75]  # quantised, and the nearest sensor the latest
    obs = [
        Observation(x, y, MOUNT, t + d, -30.0)
        for (x, y), t, d in zip(sensors, travel, late, strict=True)
    ]
    timed = locate(obs, C, fallback_radius_m=150.0, source_up=1.0)
    assert not _inside(timed, *source)  # the time differences point elsewhere
    vague = locate(obs, C, fallback_radius_m=150.0, source_up=1.0, vague_onsets=True)
    assert vague.method == "area" and _inside(vague, *source)
    # the region every sensor can hear, not a disc around one of them
    assert vague.radius_m < 150.0


def test_locate_many_takes_each_problem_s_own_area_range_and_vague_onsets() -> None:
    one = [Observation(0.0, 0.0, MOUNT, 0.0, -30.0)]
    fixes = locate_many([one, one], C, fallback_radius_m=150.0, area_hearing_m=[100.0, 500.0])
    assert [round(f.radius_m, -1) for f in fixes] == [100.0, 500.0]
    with pytest.raises(ValueError, match="one range per problem"):
        locate_many([one, one], C, area_hearing_m=[100.0])
    # vague onsets (a siren with a sharp start): four sensors that agree give a point, three
    # give an area, since three sensors fit any three onsets
    source = (10.0, 20.0)
    square = [(0.0, 0.0), (80.0, 0.0), (0.0, 80.0), (80.0, 80.0)]
    obs = [
        Observation(x, y, MOUNT, math.dist((x, y, MOUNT), (*source, 1.0)) / C, -30.0)
        for x, y in square
    ]
    four, three = locate_many([obs, obs[:3]], C, source_up=1.0, vague_onsets=True)
    assert four.method == "tdoa" and math.dist((four.east, four.north), source) < 1.0
    assert three.method == "area" and _inside(three, *source)
    assert locate_many([obs[:3]], C, source_up=1.0)[0].method == "tdoa"
