"""Association by geometry on seeded synthetic detections with exact (or jittered) arrivals.

Sensors are the bundled Saint-Étienne site's 16 lamp posts; a source at a known position
emits rounds at known times, every sensor within ``hearing`` metres reports each round with
its travel time (plus clock jitter), some reports are dropped, and sensors give different
labels. Per-shot errors are asserted and reported.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ouie.core.geo import speed_of_sound
from ouie.hub.association import Burst, Heard, Params, associate, evidence_weight
from ouie.sim.site import resolve_site

SENSORS = resolve_site(None).sensor_xyz
C = speed_of_sound(14.0)
PARAMS = Params(
    c=C,
    source_up=1.0,
    tolerance_s=0.05,
    onset_sigma_s=0.002,
    max_separation_m=600.0,
    hearing_m=150.0,
    max_solution_distance_m=2000.0,
    burst_window_s=10.0,
    burst_radius_m=100.0,
)


@dataclass(frozen=True)
class Round:
    east: float
    north: float
    t0: float


def burst(
    rng: np.random.Generator,
    rounds: int,
    gap_s: tuple[float, float],
    start: tuple[float, float] = (-30.0, 5.0),
    speed_m_s: float = 1.5,
    t0: float = 1_000.0,
) -> list[Round]:
    """``rounds`` shots, ``gap_s`` apart (uniform in the range), a shooter walking east."""
    out, t, x = [], t0, start[0]
    for _ in range(rounds):
        out.append(Round(x, start[1], t))
        gap = float(rng.uniform(*gap_s))
        t += gap
        x += speed_m_s * gap
    return out


def heard(
    rng: np.random.Generator,
    rounds: list[Round],
    hearing_m: float = 250.0,
    jitter_s: float = 0.0005,
    drop: float = 0.0,
    labels: tuple[str, ...] = ("gunshot",),
) -> list[Heard]:
    out = []
    for k, shot in enumerate(rounds):
        for i, sensor in enumerate(SENSORS):
            d = math.dist((shot.east, shot.north, 1.0), tuple(sensor))
            if d > hearing_m or rng.random() < drop:
                continue
            label = labels[i % len(labels)]
            out.append(
                Heard(
                    key=f"r{k:02d}s{i:02d}",
                    sensor=i,
                    onset=shot.t0 + d / C + float(rng.normal(0.0, jitter_s)),
                    label=label,
                    weight=evidence_weight(0.9, -20.0),
                    strength=-20.0 * math.log10(d),
                    position=(float(sensor[0]), float(sensor[1]), float(sensor[2])),
                )
            )
    return out


def truth_of(shot_keys: list[str]) -> int:
    rounds = [int(key[1:3]) for key in shot_keys]
    return max(set(rounds), key=rounds.count)


def per_shot_errors(bursts: list[Burst], rounds: list[Round]) -> tuple[list[float], int]:
    """Errors of located shots against the round most of their detections came from, and
    how many detections sit in a shot of another round."""
    errors, wrong = [], 0
    for b in bursts:
        for shot in b.shots:
            keys = [h.key for h in shot.members]
            k = truth_of(keys)
            wrong += sum(int(key[1:3]) != k for key in keys)
            if shot.located:
                assert shot.fix is not None
                errors.append(
                    math.hypot(shot.fix.east - rounds[k].east, shot.fix.north - rounds[k].north)
                )
    return errors, wrong


def partition(bursts: list[Burst]) -> list[list[list[str]]]:
    return sorted(sorted(sorted(h.key for h in s.members) for s in b.shots) for b in bursts)


@pytest.mark.parametrize(
    ("seed", "rounds", "gap_s", "jitter_ms", "drop"),
    [
        (1, 3, (0.2, 0.3), 0.5, 0.0),
        (2, 6, (3.0, 4.0), 0.5, 0.1),
        (3, 10, (0.2, 0.5), 1.0, 0.2),
        (4, 8, (0.5, 2.0), 2.0, 0.3),
        (5, 10, (0.2, 4.0), 3.0, 0.2),
    ],
)
def test_every_round_of_a_burst_is_its_own_located_shot(
    seed: int, rounds: int, gap_s: tuple[float, float], jitter_ms: float, drop: float
) -> None:
    rng = np.random.default_rng(seed)
    truth = burst(rng, rounds, gap_s)
    result = associate(heard(rng, truth, jitter_s=jitter_ms / 1000.0, drop=drop), PARAMS)
    assert len(result) == 1, "one burst, one incident"
    assert len(result[0].shots) == rounds
    errors, wrong = per_shot_errors(result, truth)
    assert wrong == 0
    assert len(errors) == rounds  # every round located by TDOA
    # the error distribution, reported when the test runs with -s
    print(f"seed {seed}: per-shot error median {np.median(errors):.2f} m, max {max(errors):.2f} m")
    assert np.median(errors) <= 1.0 + 2.0 * jitter_ms
    assert max(errors) <= 5.0 + 5.0 * jitter_ms


def test_mixed_labels_across_sensors_make_one_shot_labelled_by_evidence() -> None:
    rng = np.random.default_rng(11)
    truth = burst(rng, 1, (1.0, 1.0))
    # near sensors call it breaking glass (the example), far ones a gunshot
    detections = []
    for h in heard(rng, truth, hearing_m=300.0):
        near = math.dist(h.position, (truth[0].east, truth[0].north, 1.0)) < 80.0
        detections.append(
            Heard(
                h.key,
                h.sensor,
                h.onset,
                "glass_breaking" if near else "gunshot",
                evidence_weight(0.9, -0.5 if near else -20.0),  # the near ones clipped
                h.strength,
                h.position,
            )
        )
    result = associate(detections, PARAMS)
    assert len(result) == 1 and len(result[0].shots) == 1
    assert result[0].shots[0].located
    assert result[0].label == "gunshot"
    assert set(result[0].evidence) == {"glass_breaking", "gunshot"}


def test_a_node_switching_label_halfway_adds_evidence_not_a_round() -> None:
    rng = np.random.default_rng(16)
    truth = burst(rng, 1, (1.0, 1.0))
    first = heard(rng, truth, labels=("glass_breaking",))
    # every sensor reports the tail as a gunshot, stamped where its label changed (about the
    # same moment for the near ones, soon after its own onset for the far ones), not where
    # the sound arrived
    switch = truth[0].t0 + 0.45
    tails = [
        Heard(
            "t" + h.key,
            h.sensor,
            max(switch, h.onset + 0.08),
            "gunshot",
            0.95,
            h.strength,
            h.position,
        )
        for h in first
    ]
    result = associate(first + tails, PARAMS)
    assert len(result) == 1 and len(result[0].shots) == 1
    shot = result[0].shots[0]
    assert shot.located and len(shot.members) == 2 * len(first)
    assert not any(h.key.startswith("t") for h in shot.locating)
    assert result[0].label == "gunshot"


def test_repeated_rounds_weigh_towards_gunfire() -> None:
    rng = np.random.default_rng(12)
    truth = burst(rng, 4, (1.0, 1.5))
    labels = ("glass_breaking", "glass_breaking", "gunshot")  # 2:1 for glass per round
    result = associate(heard(rng, truth, labels=labels), PARAMS)
    assert len(result) == 1 and len(result[0].shots) == 4
    assert result[0].label == "gunshot"  # four rounds from one place: ×2.5 for gunshot
    single = associate(heard(rng, truth[:1], labels=labels), PARAMS)
    assert single[0].label == "glass_breaking"


def test_two_sensor_events_are_areas_that_hold_the_source() -> None:
    rng = np.random.default_rng(13)
    # between the two westernmost posts, 55 m apart; the next one is 75 m away
    truth = burst(rng, 3, (2.0, 3.0), start=(-130.0, 12.0))
    detections = heard(rng, truth, hearing_m=60.0)  # only those two hear it
    result = associate(detections, PARAMS)
    shots = [shot for b in result for shot in b.shots]
    assert len(shots) == 3
    for shot, source in zip(sorted(shots, key=lambda s: s.t0), truth, strict=True):
        assert shot.fix is not None and shot.fix.method == "area"
        assert len(shot.by_sensor) <= 2
        assert math.hypot(shot.fix.east - source.east, shot.fix.north - source.north) <= (
            shot.fix.radius_m
        )


@pytest.mark.parametrize("start", [(60.0, -30.0), (-60.0, 60.0)])
def test_a_round_only_two_sensors_heard_stays_in_its_burst(start: tuple[float, float]) -> None:
    """With a gunshot's 600 m reach, a round that two sensors heard is an area whose centre
    may lie 200 m and more from the shooter; the source is anywhere in it, so it is still
    a round of the burst around it, not an incident of its own."""
    params = dataclasses.replace(PARAMS, area_ranges=(("gunshot", 600.0),))
    rng = np.random.default_rng(21)
    truth = burst(rng, 3, (1.0, 1.5), start=start)
    detections = heard(rng, truth, hearing_m=250.0)
    middle = sorted((h for h in detections if h.key.startswith("r01")), key=lambda h: h.onset)
    detections = [h for h in detections if not h.key.startswith("r01")] + middle[:2]
    result = associate(detections, params)
    assert len(result) == 1 and len(result[0].shots) == 3
    area = sorted(result[0].shots, key=lambda s: s.t0)[1]
    assert area.fix is not None and area.fix.method == "area"
    off = math.hypot(area.fix.east - truth[1].east, area.fix.north - truth[1].north)
    assert 200.0 < off <= area.fix.radius_m


def test_distant_simultaneous_sounds_stay_apart() -> None:
    rng = np.random.default_rng(14)
    here = burst(rng, 1, (1.0, 1.0), start=(-100.0, 5.0))
    there = burst(rng, 1, (1.0, 1.0), start=(120.0, 0.0), t0=1_000.3)
    detections = heard(rng, here, hearing_m=110.0) + [
        Heard("x" + h.key, h.sensor, h.onset, "glass_breaking", h.weight, h.strength, h.position)
        for h in heard(rng, there, hearing_m=110.0)
    ]
    result = associate(detections, PARAMS)
    assert len(result) == 2
    assert sorted(b.label for b in result) == ["glass_breaking", "gunshot"]


def test_rounds_beyond_the_burst_window_are_separate_incidents() -> None:
    rng = np.random.default_rng(15)
    truth = burst(rng, 2, (25.0, 25.0))
    result = associate(heard(rng, truth), PARAMS)
    assert [len(b.shots) for b in result] == [1, 1]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    rounds=st.integers(1, 6),
    gap=st.floats(0.2, 4.0),
    order=st.randoms(use_true_random=False),
)
def test_permuting_arrival_order_never_changes_the_association(
    seed: int, rounds: int, gap: float, order: object
) -> None:
    rng = np.random.default_rng(seed)
    truth = burst(rng, rounds, (gap, gap * 1.3))
    detections = heard(rng, truth, jitter_s=0.002, drop=0.2, labels=("gunshot", "explosion"))
    if not detections:
        return
    shuffled = list(detections)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    assert partition(associate(shuffled, PARAMS)) == partition(associate(detections, PARAMS))
