"""Metric code against hand-computed cases, and agreement with sed_eval called directly."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from ouie.eval.metrics import (
    ScoreTimeline,
    add_confusion,
    clip_correct,
    event_based_scores,
    false_alarms_per_hour,
    match_latencies,
    percentile,
    segment_based_scores,
    threshold_free,
    timeline_from_windows,
)

LABELS = ("gunshot", "glass_breaking", "scream", "explosion", "siren")


@dataclass(frozen=True)
class Ev:
    label: str
    onset_s: float
    offset_s: float
    emitted_at_s: float = 0.0


def test_event_based_hand_computed() -> None:
    refs = {"a": [Ev("gunshot", 1.0, 1.2), Ev("siren", 5.0, 8.0)]}
    # gunshot 0.3 s late: inside the 0.5 s collar; its offset is far off but not scored.
    # siren 0.8 s late: outside the collar -> one deletion and one insertion.
    ests = {"a": [Ev("gunshot", 1.3, 9.0), Ev("siren", 5.8, 6.0)]}
    scores = event_based_scores(refs, ests, LABELS)
    assert scores.f1 == pytest.approx(0.5)  # TP 1, Nsys 2, Nref 2
    assert scores.precision == pytest.approx(0.5)
    assert scores.recall == pytest.approx(0.5)
    assert scores.error_rate == pytest.approx(1.0)  # (S 0 + D 1 + I 1) / N 2
    assert scores.per_class["gunshot"].f1 == pytest.approx(1.0)
    assert scores.per_class["siren"].f1 == pytest.approx(0.0)
    assert scores.per_class["siren"].n_ref == 1
    assert scores.per_class["scream"].f1 is None  # no references: undefined, not 0
    assert scores.per_class["scream"].error_rate is None
    assert scores.f1_macro == pytest.approx(0.5)  # mean over gunshot and siren only


def test_event_based_substitution_and_collar_edges() -> None:
    refs = {"a": [Ev("gunshot", 1.0, 1.1)], "b": [Ev("glass_breaking", 2.0, 2.5)]}
    ests = {"a": [Ev("explosion", 1.1, 1.2)], "b": [Ev("glass_breaking", 2.49, 2.6)]}
    scores = event_based_scores(refs, ests, LABELS)
    assert scores.error_rate == pytest.approx(0.5)  # one substitution over two references
    assert scores.f1 == pytest.approx(0.5)
    late = event_based_scores(refs, {"b": [Ev("glass_breaking", 2.51, 2.6)]}, LABELS)
    assert late.f1 == pytest.approx(0.0)
    assert late.precision == pytest.approx(0.0)


def test_nothing_found_is_zero_not_undefined() -> None:
    scores = event_based_scores({"a": [Ev("gunshot", 1.0, 1.1)]}, {}, LABELS)
    assert scores.f1 == 0.0
    assert scores.precision is None  # no output: precision undefined
    assert scores.recall == 0.0
    assert scores.error_rate == pytest.approx(1.0)


def _sed_eval_direct(refs: dict[str, list[Ev]], ests: dict[str, list[Ev]]) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sed_eval

        metric = sed_eval.sound_event.EventBasedMetrics(
            event_label_list=list(LABELS),
            t_collar=0.5,
            evaluate_onset=True,
            evaluate_offset=False,
        )
        for name in refs:
            metric.evaluate(
                [
                    {
                        "filename": name,
                        "event_label": e.label,
                        "onset": e.onset_s,
                        "offset": e.offset_s,
                    }
                    for e in refs[name]
                ],
                [
                    {
                        "filename": name,
                        "event_label": e.label,
                        "onset": e.onset_s,
                        "offset": e.offset_s,
                    }
                    for e in ests.get(name, [])
                ],
            )
        return metric.results()


def test_agrees_with_sed_eval_on_random_lists() -> None:
    rng = np.random.default_rng(3)
    refs: dict[str, list[Ev]] = {}
    ests: dict[str, list[Ev]] = {}
    for k in range(12):
        name = f"m{k}"
        refs[name] = []
        ests[name] = []
        for _ in range(int(rng.integers(1, 4))):
            onset = float(rng.uniform(0, 28))
            label = str(rng.choice(LABELS))
            refs[name].append(Ev(label, onset, onset + float(rng.uniform(0.1, 2))))
            if rng.random() < 0.7:
                guess = label if rng.random() < 0.8 else str(rng.choice(LABELS))
                jitter = float(rng.normal(0, 0.4))
                ests[name].append(Ev(guess, max(0.0, onset + jitter), onset + 1.0))
        if rng.random() < 0.5:
            onset = float(rng.uniform(0, 28))
            ests[name].append(Ev(str(rng.choice(LABELS)), onset, onset + 0.5))
    ours = event_based_scores(refs, ests, LABELS)
    direct = _sed_eval_direct(refs, ests)
    assert ours.f1 == pytest.approx(direct["overall"]["f_measure"]["f_measure"])
    assert ours.error_rate == pytest.approx(direct["overall"]["error_rate"]["error_rate"])
    for label in LABELS:
        wise = direct["class_wise"][label]
        if wise["count"]["Nref"] and wise["count"]["Nsys"]:
            assert ours.per_class[label].f1 == pytest.approx(wise["f_measure"]["f_measure"])


def test_segment_based_hand_computed() -> None:
    refs = {"a": [Ev("gunshot", 0.2, 1.5)]}  # active in 1 s segments 0 and 1
    ests = {"a": [Ev("gunshot", 1.2, 2.5)]}  # active in segments 1 and 2
    scores = segment_based_scores(refs, ests, {"a": 4.0}, LABELS)
    assert scores.f1 == pytest.approx(0.5)  # TP 1, FP 1, FN 1
    assert scores.per_class["gunshot"].precision == pytest.approx(0.5)


def test_rates_accuracy_percentiles() -> None:
    assert false_alarms_per_hour(3, 1800.0) == pytest.approx(6.0)
    assert false_alarms_per_hour(0, 7200.0) == 0.0
    assert false_alarms_per_hour(2, 0.0) is None
    assert clip_correct("gunshot", {"gunshot"}, is_target=True)
    assert not clip_correct("gunshot", {"gunshot", "explosion"}, is_target=True)
    assert not clip_correct("gunshot", set(), is_target=True)
    assert clip_correct("dog_bark", set(), is_target=False)
    assert not clip_correct("speech", {"scream"}, is_target=False)
    assert percentile([], 50) is None
    assert percentile([0.1, 0.2, 0.3, 0.4], 50) == pytest.approx(0.25)


def test_latency_matching() -> None:
    truth = [Ev("gunshot", 10.0, 10.1), Ev("siren", 20.0, 25.0), Ev("scream", 28.0, 29.0)]
    detected = [
        Ev("siren", 20.3, 20.9, emitted_at_s=20.96),
        Ev("gunshot", 10.004, 10.5, emitted_at_s=10.48),
        Ev("gunshot", 10.2, 10.7, emitted_at_s=10.72),  # second hit: not used twice
        Ev("scream", 27.0, 27.5, emitted_at_s=27.5),  # outside the collar
    ]
    latencies, missed = match_latencies(truth, detected)
    assert latencies == pytest.approx([0.48, 0.96])
    assert missed == 1


def test_confusion_counts_each_label_once() -> None:
    table: dict[str, dict[str, int]] = {}
    add_confusion(table, "gunshot", ["gunshot", "gunshot", "explosion"])
    add_confusion(table, "gunshot", [])
    add_confusion(table, "speech", [])
    assert table == {"gunshot": {"gunshot": 1, "explosion": 1, "none": 1}, "speech": {"none": 1}}


def test_timeline_frames_around_window_centres() -> None:
    starts = np.array([0.0, 0.5, 1.0])
    timeline = timeline_from_windows(starts, np.zeros((3, 8), np.float32), 1.0, 2.0)
    # centres 0.5, 1.0, 1.5 -> boundaries 0, 0.75, 1.25, 2.0
    assert timeline.boundaries_s.tolist() == pytest.approx([0.0, 0.75, 1.25, 2.0])


def _timeline(active: list[tuple[float, float, int]], n: int = 60) -> ScoreTimeline:
    scores = np.full((n, 8), 0.05, dtype=np.float32)
    bounds = np.linspace(0.0, 30.0, n + 1)
    for onset, offset, column in active:
        centres = (bounds[:-1] + bounds[1:]) / 2
        scores[(centres >= onset) & (centres <= offset), column] = 0.9
    return ScoreTimeline(bounds, scores)


def test_threshold_free_perfect_and_useless_scores() -> None:
    labels = ("gunshot", "glass_breaking", "scream", "explosion", "vehicle_crash", "siren",
              "car_alarm", "spray_can")  # fmt: skip
    refs: dict[str, list[Ev]] = {}
    perfect: dict[str, ScoreTimeline] = {}
    wrong: dict[str, ScoreTimeline] = {}
    for k in range(5):  # PSDS needs at least 5 events of a class
        onset = 2.0 + 4 * k
        refs[f"g{k}"] = [Ev("gunshot", onset, onset + 2.0)]
        perfect[f"g{k}"] = _timeline([(onset, onset + 2.0, 0)])
        wrong[f"g{k}"] = _timeline([(25.0, 29.0, 0)])
        refs[f"s{k}"] = [Ev("siren", onset, onset + 4.0)]
        perfect[f"s{k}"] = _timeline([(onset, onset + 4.0, 5)])
        wrong[f"s{k}"] = _timeline([(25.0, 29.0, 5)])
    refs["x"] = [Ev("scream", 3.0, 6.0)]  # one event: AP yes, PSDS no
    perfect["x"] = wrong["x"] = _timeline([(3.0, 6.0, 2)])
    durations = dict.fromkeys(refs, 30.0)
    result = threshold_free(perfect, refs, durations, labels)
    assert result.average_precision == pytest.approx({"gunshot": 1.0, "siren": 1.0, "scream": 1.0})
    assert result.mean_average_precision == pytest.approx(1.0)
    assert result.psds is not None and result.psds > 0.9
    assert set(result.pr_curves) == {"gunshot", "siren", "scream"}
    worse = threshold_free(wrong, refs, durations, labels)
    assert worse.mean_average_precision is not None and worse.mean_average_precision < 0.6
    assert worse.psds is not None and worse.psds < 0.1
