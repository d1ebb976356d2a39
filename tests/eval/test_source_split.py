"""``ouie eval --split source``: leave one source_repo out, on generated data with exact answers.

The data: source ``o/a`` (gunshots, dog barks, speech; one more gunshot in a second data
dir), ``o/b`` (sirens only), ``o/c`` (a 35 s street ambience and a short rain clip, no
targets) and ``o/d`` (one gunshot, second data dir). ``ToneClassifier`` finds every tone.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pydantic import ValidationError
from typer.testing import CliRunner

import ouie.eval.audio as audio_module
import ouie.eval.source_split as split_module
from ouie.cli import app
from ouie.config.node import NodeSettings
from ouie.core.labels import EVENT_LABELS
from ouie.eval.builds import BUILD_FILE, BuildError, build_for, load_builds
from ouie.eval.clip_recall import (
    allowed_false_clips,
    at_class_thresholds,
    class_recall_at_rate,
    class_thresholds,
    clip_pool,
    false_clip_onsets,
    largest_allowance,
    recall_at_rate,
    to_units,
)
from ouie.eval.runner import EvalError, EvalOptions
from ouie.eval.source_data import group_by_source, load_items
from ouie.eval.source_figures import clip_recall_figures
from ouie.eval.source_report import render_source_report, summary_rows
from ouie.eval.source_result import ClipScoreRow, SourceSplitResult
from ouie.eval.source_split import SourceSplitOptions, run_source_split
from ouie.node.classifiers.compact import DIGEST_FILE, MODEL_FILE
from tests.eval.fakes import RATE, ToneClassifier, bang, noise, tone

LABELS = [label.value for label in EVENT_LABELS]


def _write(root: Path, rows: list[tuple[str, str, str, np.ndarray]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, _, _, audio in rows:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), audio, RATE, subtype="PCM_16")
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "source_repo"])
        writer.writerows((name, label, source) for name, label, source, _ in rows)
    return root


def _shot(rng: np.random.Generator) -> np.ndarray:
    clip = noise(2.0, rng)
    b = bang()
    clip[8000 : 8000 + b.size] += b
    return clip


def _siren(rng: np.random.Generator) -> np.ndarray:
    clip = noise(2.0, rng)
    clip[8000 : 8000 + int(0.8 * RATE)] += tone(0.8)
    return clip


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("sources")
    main = _write(
        root / "main",
        [(f"a/shot{i}.wav", "gunshot", "o/a", _shot(rng)) for i in range(3)]
        + [(f"a/dog{i}.wav", "dog_bark", "o/a", noise(1.0, rng, 0.004)) for i in range(2)]
        + [("a/talk.wav", "speech", "o/a", noise(2.0, rng, 0.003))]
        + [(f"b/siren{i}.wav", "siren", "o/b", _siren(rng)) for i in range(2)]
        + [("c/street.wav", "background", "o/c", noise(35.0, rng, 0.003))]
        + [("c/rain.wav", "rain", "o/c", noise(1.0, rng, 0.004))],
    )
    extra = _write(
        root / "extra",
        [
            ("d/shot.wav", "gunshot", "o/d", _shot(rng)),
            ("a/shot9.wav", "gunshot", "o/a", _shot(rng)),
        ],
    )
    return main, extra


def _tone(options: EvalOptions, settings: NodeSettings) -> ToneClassifier:
    return ToneClassifier()


@pytest.fixture(scope="module")
def result(dirs: tuple[Path, Path]) -> SourceSplitResult:
    return run_source_split(SourceSplitOptions(data_dirs=dirs, backend="tone"), make=_tone)


def _block(result: SourceSplitResult, source: str):  # type: ignore[no-untyped-def]
    return next(b for b in result.sources if b.source == source)


# --- which clips form which source -------------------------------------------------------


def test_sources_are_grouped_across_data_dirs(dirs: tuple[Path, Path]) -> None:
    items, listed, skipped = load_items(dirs)
    sources = group_by_source(items, listed)
    assert [s.source for s in sources] == ["o/a", "o/b", "o/c", "o/d"]
    a = sources[0]
    assert len(a.items) == a.listed == 7
    assert a.data_dirs == sorted(str(d) for d in dirs)
    assert sum(1 for i in a.items if i.clip.is_target) == 4
    assert skipped == []


def test_a_clip_without_source_repo_is_refused(tmp_path: Path) -> None:
    root = _write(tmp_path, [("x.wav", "gunshot", "", noise(1.0, np.random.default_rng(0)))])
    with pytest.raises(EvalError, match="have no source_repo"):
        load_items([root])


# --- the run -----------------------------------------------------------------------------


def test_every_source_is_held_out_and_scored(result: SourceSplitResult) -> None:
    assert [b.source for b in result.sources] == ["o/a", "o/b", "o/c", "o/d"]
    assert all(b.status == "evaluated" for b in result.sources)
    assert result.model_ids == {s: "test-tone" for s in ("o/a", "o/b", "o/c", "o/d")}
    a, b, c, d = (_block(result, s) for s in ("o/a", "o/b", "o/c", "o/d"))
    assert (a.n_clips, a.n_targets, a.n_non_targets, a.n_speech) == (7, 4, 3, 1)
    # targets and non-targets: its own operating points; otherwise the pooled thresholds
    assert a.clip_recall is not None and a.clip_recall.basis == "own"
    assert b.clip_recall is not None and b.clip_recall.basis == "pooled_thresholds"
    assert c.clip_recall is not None and c.clip_recall.points[1].recall is None
    assert c.clip_recall.points[1].false_clip_rate == 0.0
    # per class: every non-target scores 0.02 everywhere, so each t_c sits one unit above it
    assert all(p.recall == 1.0 for p in a.clip_recall.points)
    assert all(set(p.thresholds.values()) == {0.020001} for p in a.clip_recall.points)
    assert all(p.threshold == 0.95 for p in a.clip_recall.single_threshold.points)
    assert b.clip_recall.points[0].recall == 1.0 and b.clip_recall.points[0].false_clip_rate is None
    assert a.clip_recall.per_class["gunshot"].found == 4
    assert b.clip_recall.per_class["siren"].recall == 1.0
    assert a.deployed is not None and a.deployed.targets_found == 4
    assert a.deployed.speech_clips == 1 and a.deployed.speech_events == 0
    assert a.thresholds_from == "config" and a.thresholds["gunshot"] == 0.5
    assert d.n_targets == 1 and d.n_non_targets == 0


def test_overall_is_pooled_over_the_sources(result: SourceSplitResult) -> None:
    o = result.overall
    assert o.sources_evaluated == ["o/a", "o/b", "o/c", "o/d"] and o.sources_skipped == []
    assert (o.n_clips, o.n_targets, o.n_non_targets, o.n_speech) == (12, 7, 5, 1)
    assert o.deployed is not None
    assert o.deployed.targets_found == 7 and o.deployed.targets == 7
    assert o.deployed.per_class["gunshot"].n == 5 and o.deployed.per_class["siren"].n == 2
    assert o.deployed.non_target_clips == 5 and o.deployed.non_target_clips_with_event == 0
    assert o.deployed.background_hours == pytest.approx((35 + 3) / 3600, abs=1e-4)
    assert o.deployed.false_alarms_per_hour == 0.0
    assert o.clip_recall is not None and o.clip_recall.basis == "own"
    assert [p.recall for p in o.clip_recall.points] == [1.0, 1.0, 1.0]
    assert [p.n_targets for p in o.clip_recall.points] == [7, 7, 7]
    # the street view keeps background and speech, drops the dog barks and the rain
    street = o.street_clip_recall
    assert street is not None
    assert [(p.n_targets, p.n_non_targets) for p in street.points] == [(7, 2)] * 3
    assert len(result.clips) == 12
    row = next(r for r in result.clips if r.file == "d/shot.wav")
    assert row.source == "o/d" and row.label == "gunshot" and row.events == ["gunshot"]
    assert row.scores["gunshot"] == pytest.approx(0.95) and set(row.scores) == set(LABELS)


def test_mixtures_use_own_backgrounds_else_the_data_ambience(result: SourceSplitResult) -> None:
    a, b, c, d = (_block(result, s) for s in ("o/a", "o/b", "o/c", "o/d"))
    assert a.mixtures is not None and (a.mixtures.n, a.mixtures.source_background) == (4, 4)
    assert a.mixtures.constructed == 4  # no long ambience: its dog barks over generated traffic
    for block, n in ((b, 2), (d, 1)):  # targets only: o/c's street ambience, every mixture
        assert block.mixtures is not None
        assert block.mixtures.data_ambience_background == block.mixtures.ambience == n
    assert c.mixtures is None  # no targets, no mixtures
    o = result.overall.mixtures
    assert o is not None and o.n == 7 and o.event_f1 == 1.0
    assert (o.source_background, o.data_ambience_background, o.generated_background) == (4, 3, 0)
    assert [e.ebr_db for e in o.by_ebr] == [-6.0, 0.0, 6.0]
    assert sum(e.n for e in o.by_ebr) == 7


def test_each_file_is_read_once(dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    reads: Counter[str] = Counter()
    real = split_module.read_audio

    def counting(path: Path):  # type: ignore[no-untyped-def]
        reads[path.name] += 1
        return real(path)

    monkeypatch.setattr(split_module, "read_audio", counting)
    monkeypatch.setattr(audio_module, "read_audio", counting)
    run_source_split(SourceSplitOptions(data_dirs=dirs, backend="tone"), make=_tone)
    assert len(reads) == 12 and set(reads.values()) == {1}


def test_mode_clips_skips_mixtures(dirs: tuple[Path, Path]) -> None:
    r = run_source_split(
        SourceSplitOptions(data_dirs=dirs, backend="tone", mode="clips"), make=_tone
    )
    assert r.overall.mixtures is None and all(b.mixtures is None for b in r.sources)
    assert r.overall.clip_recall is not None


def test_json_round_trip_refuses_unknown_keys(result: SourceSplitResult) -> None:
    text = result.model_dump_json()
    assert SourceSplitResult.model_validate_json(text) == result
    data = json.loads(text)
    data["overall"]["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        SourceSplitResult.model_validate(data)


def test_summary_rows_mark_pooled_thresholds(result: SourceSplitResult) -> None:
    rows = summary_rows(result)
    assert [r[0] for r in rows] == [
        "o/a",
        "o/b",
        "o/c",
        "o/d",
        "pooled (4 sources)",
        "pooled, street non-targets",
    ]
    assert rows[-1][1] == "7/2" and all(len(r) == len(rows[0]) for r in rows)
    assert rows[0][3] == "1.000" and rows[1][3] == "1.000*"
    assert rows[0][6] == "1.000" and rows[1][6] == "1.000*"  # one threshold, 2 %
    assert rows[1][-1].endswith("(2 on data ambience)")
    page = render_source_report(result)
    assert page.count("<tr>") == 7 and "o/d" in page


# --- threshold-free recall on hand-made scores -------------------------------------------


def _scores(**by_label: float) -> list[float]:
    return [by_label.get(label, 0.0) for label in LABELS]


#: 50 non-targets scoring gunshot (g) and siren (s), nothing else (six labels without any
#: non-target mass): n1 g .9, n2 g .7 s .7, n3 g .7 s .2 (a tie with n2 in g), n4 s .6,
#: n5 s .5, 45 more at g .1 s .1. Targets: gunshots .95 .8 .7 (tied with the non-targets)
#: .3, sirens .65 .55, screams .2 and 0.
PER_CLASS = (
    [
        ("other", False, _scores(gunshot=0.9, siren=0.1)),
        ("other", False, _scores(gunshot=0.7, siren=0.7)),
        ("other", False, _scores(gunshot=0.7, siren=0.2)),
        ("rain", False, _scores(gunshot=0.1, siren=0.6)),
        ("speech", False, _scores(gunshot=0.1, siren=0.5)),
    ]
    + [("background", False, _scores(gunshot=0.1, siren=0.1))] * 45
    + [("gunshot", True, _scores(gunshot=s)) for s in (0.95, 0.8, 0.7, 0.3)]
    + [("siren", True, _scores(siren=s)) for s in (0.65, 0.55)]
    + [("scream", True, _scores(scream=s)) for s in (0.2, 0.0)]
)


def test_balanced_recall_weighs_every_source_of_a_label_the_same() -> None:
    # 50 background non-targets at 0; gunshots: 20 of source "big" at .9 (all found at .5),
    # 5 of "small" at .1 (none found), 2 of "tiny" at .9 (a cell under MIN_CELL_CLIPS);
    # sirens: 5 of "small", 4 at .9.
    rows = (
        [("background", False, _scores())] * 50
        + [("gunshot", True, _scores(gunshot=0.9))] * 20
        + [("gunshot", True, _scores(gunshot=0.1))] * 5
        + [("gunshot", True, _scores(gunshot=0.9))] * 2
        + [("siren", True, _scores(siren=s)) for s in (0.9, 0.9, 0.9, 0.9, 0.0)]
    )
    groups = ["bg"] * 50 + ["big"] * 20 + ["small"] * 5 + ["tiny"] * 2 + ["small"] * 5
    pool = clip_pool(rows, LABELS, groups)
    point = at_class_thresholds(pool, to_units([0.5] * len(LABELS)), 0.02, 0.0)
    assert (point.found, point.n_targets) == (26, 32)  # pooled recall 0.81
    # cells: big gunshot 1.0, small gunshot 0.0, small siren 0.8 (tiny left out)
    assert point.balanced_cells == 3
    assert point.balanced_recall == pytest.approx((1.0 + 0.0 + 0.8) / 3)
    # without sources every label is one cell: gunshot 22/27, siren 4/5
    alone = at_class_thresholds(clip_pool(rows, LABELS), to_units([0.5] * len(LABELS)), 0.02, 0)
    assert alone.balanced_cells == 2
    assert alone.balanced_recall == pytest.approx((22 / 27 + 0.8) / 2)
    with pytest.raises(ValueError, match="groups for"):
        clip_pool(rows, LABELS, groups[:-1])


def test_per_class_operating_points_are_exact() -> None:
    pool = clip_pool(PER_CLASS, LABELS)
    assert (pool.n_targets, pool.n_non_targets) == (8, 50)
    # A clip turns false at k >= min over classes of #{non-targets scoring >= it there}:
    # n1 1 (g), n2 1 (s), n4 2 (s), n3 3 (g, tied with n2), n5 3 (s), the rest 50.
    assert sorted(false_clip_onsets(pool).tolist())[:6] == [1, 1, 2, 3, 3, 50]
    # 1 % and 2 % (0 and 1 false clips of 50): at k = 1 n1 and n2 turn false together, so
    # q = 0; every t_c one unit above its highest non-target score (1e-6: no mass).
    for rate in (0.01, 0.02):
        point = class_recall_at_rate(pool, rate)
        assert point is not None and point.per_label_false_rate == 0.0
        assert point.thresholds["gunshot"] == 0.900001
        assert point.thresholds["siren"] == 0.700001
        assert point.thresholds["scream"] == point.thresholds["car_alarm"] == 0.000001
        # gunshot .95 and scream .2 (the scream at 0 is never found)
        assert (point.found, point.recall, point.false_clips) == (2, 0.25, 0)
        assert point.found_by_label["scream"] == (1, 2)
    # 5 % (2 allowed): k = 1, q = 0.02; g stays at .700001 (the tie lets only n1 over it),
    # s .600001: n1 (g) and n2 (s) are false; k = 2 would add n4 (s .5 bar).
    p5 = class_recall_at_rate(pool, 0.05)
    assert p5 is not None and p5.per_label_false_rate == 0.02
    assert (p5.thresholds["gunshot"], p5.thresholds["siren"]) == (0.700001, 0.600001)
    assert (p5.found, p5.false_clips) == (4, 2)  # g .95 .8 (not the tied .7), s .65, scream
    assert p5.false_clips_by_label["gunshot"] == 1 and p5.false_clips_by_label["siren"] == 1
    assert p5.recall == 0.5 and p5.false_clip_rate == 0.04
    # 10 % (5 allowed): the largest q is 49/50, both bars at .1: n1…n5 are false, 7 found
    p10 = class_recall_at_rate(pool, 0.10)
    assert p10 is not None and p10.per_label_false_rate == 0.98
    assert (p10.thresholds["gunshot"], p10.thresholds["siren"]) == (0.100001, 0.100001)
    assert (p10.found, p10.false_clips) == (7, 5)
    assert p10.false_clips_by_label == {**dict.fromkeys(LABELS, 0), "gunshot": 3, "siren": 4}
    # everything allowed: every t_c is 0 and every clip counts
    p100 = class_recall_at_rate(pool, 1.0)
    assert p100 is not None and (p100.found, p100.false_clips) == (8, 50)
    assert set(p100.thresholds.values()) == {0.0}


def test_per_class_figures_and_the_single_threshold_block() -> None:
    figures = clip_recall_figures(clip_pool(PER_CLASS, LABELS))
    assert figures is not None and figures.basis == "own"
    assert [p.recall for p in figures.points] == [0.25, 0.25, 0.5]
    assert [p.per_label_false_rate for p in figures.points] == [0.0, 0.0, 0.02]
    assert figures.per_class["gunshot"].model_dump() == {"found": 1, "n": 4, "recall": 0.25}
    assert figures.per_class["siren"].model_dump() == {"found": 0, "n": 2, "recall": 0.0}
    assert figures.per_class["scream"].model_dump() == {"found": 1, "n": 2, "recall": 0.5}
    assert figures.per_class["explosion"].recall is None
    # one threshold for all: the maxima are .9 .7 .7 .6 .5 .1…; 1 %: above .9 -> .95;
    # 2 % and 5 % (1, 2 allowed): above .7 -> .8, finding .95 and .8
    single = figures.single_threshold
    assert [p.threshold for p in single.points] == [0.95, 0.8, 0.8]
    assert [p.found for p in single.points] == [1, 2, 2]
    assert [p.false_clips for p in single.points] == [0, 1, 1]
    assert single.per_class["gunshot"].found == 2 and single.per_class["scream"].found == 0


def test_the_scan_matches_brute_force_on_tied_scores() -> None:
    rng = np.random.default_rng(3)
    rows = [
        ("other", False, list(np.round(rng.uniform(0, 1, len(LABELS)) ** 3, 1))) for _ in range(40)
    ] + [("gunshot", True, _scores(gunshot=0.5))]
    pool = clip_pool(rows, LABELS)
    union = [
        at_class_thresholds(pool, class_thresholds(pool, k), 0.0, 0.0).false_clips
        for k in range(41)
    ]
    assert union == sorted(union)  # monotone in q
    for rate in (0.0, 0.01, 0.05, 0.1, 0.2, 0.5, 0.9):
        allowed = allowed_false_clips(rate, 40)
        best = max(k for k in range(41) if union[k] <= allowed)
        assert largest_allowance(pool, rate) == best


def test_empty_pools_and_pools_without_one_kind() -> None:
    empty = clip_pool([], LABELS)
    assert class_recall_at_rate(empty, 0.02) is None
    assert clip_recall_figures(empty) is None
    pooled = clip_recall_figures(clip_pool(PER_CLASS, LABELS))
    assert clip_recall_figures(empty, pooled) is None
    only_non_targets = clip_pool(PER_CLASS[:50], LABELS)
    point = class_recall_at_rate(only_non_targets, 0.05)
    assert point is not None and point.recall is None and point.false_clips == 2
    assert clip_recall_figures(only_non_targets) is None  # no targets: no own figures


def test_sources_without_both_kinds_use_the_pooled_per_class_thresholds() -> None:
    pooled = clip_recall_figures(clip_pool(PER_CLASS, LABELS))
    assert pooled is not None
    targets = [
        ("gunshot", True, _scores(gunshot=0.75)),
        ("siren", True, _scores(siren=0.65)),
    ]
    y = clip_recall_figures(clip_pool(targets, LABELS), pooled)
    assert y is not None and y.basis == "pooled_thresholds"
    # 1 %, 2 %: g .900001, s .700001 -> nothing; 5 %: g .700001, s .600001 -> both
    assert [p.found for p in y.points] == [0, 0, 2]
    assert y.points[2].thresholds == pooled.points[2].thresholds
    assert y.points[2].per_label_false_rate == 0.02 and y.points[2].false_clip_rate is None
    assert y.single_threshold.points[1].threshold == 0.8  # the pooled single threshold
    assert y.single_threshold.points[1].found == 0
    quiet = [("rain", False, _scores(siren=0.65))]
    z = clip_recall_figures(clip_pool(quiet, LABELS), pooled)
    assert z is not None and [p.false_clips for p in z.points] == [0, 0, 1]
    assert z.points[0].recall is None


#: The single-threshold figure alone (schema 1's): non-targets score in one class only.
def _row(label: str, target: bool, score: float) -> tuple[str, bool, list[float]]:
    scores = [0.0] * len(LABELS)
    scores[LABELS.index(label) if target else 0] = score
    return (label, target, scores)


HAND_MADE = (
    [_row("gunshot", True, s) for s in (0.99, 0.9, 0.6, 0.3)]
    + [_row("siren", True, s) for s in (0.8, 0.4)]
    + [_row("other", False, s) for s in [0.95, 0.7, 0.5] + [0.2] * 47]
)


def test_single_threshold_recall_is_exact() -> None:
    pool = clip_pool(HAND_MADE, LABELS)
    assert (pool.n_targets, pool.n_non_targets) == (6, 50)
    # 1 %: 0 false clips allowed of 50 -> above 0.95 -> 0.99 finds one clip
    p1 = recall_at_rate(pool, 0.01)
    assert (p1.threshold, p1.found, p1.false_clips) == (0.99, 1, 0)
    assert p1.recall == pytest.approx(1 / 6)
    # 2 %: one false clip allowed -> above 0.7 -> the lowest score there is 0.8
    p2 = recall_at_rate(pool, 0.02)
    assert (p2.threshold, p2.found, p2.recall, p2.false_clips, p2.false_clip_rate) == (
        0.8, 3, 0.5, 1, 0.02,
    )  # fmt: skip
    # 5 %: two allowed -> above 0.5 -> 0.6
    p5 = recall_at_rate(pool, 0.05)
    assert (p5.threshold, p5.found, p5.false_clips) == (0.6, 4, 2)
    figures = clip_recall_figures(pool)
    assert figures is not None and figures.basis == "own"
    single = figures.single_threshold
    assert [p.recall for p in single.points] == [0.1667, 0.5, 0.6667]
    assert single.per_class["gunshot"].model_dump() == {"found": 2, "n": 4, "recall": 0.5}
    assert single.per_class["siren"].model_dump() == {"found": 1, "n": 2, "recall": 0.5}
    assert single.per_class["scream"].recall is None
    # per class, the siren column has no non-target mass: both sirens count at 1e-6
    assert figures.per_class["siren"].found == 2


def test_no_single_threshold_qualifies_means_nothing_found() -> None:
    pool = clip_pool(
        [_row("gunshot", True, 0.5), _row("other", False, 0.9), _row("other", False, 0.8)], LABELS
    )
    point = recall_at_rate(pool, 0.02)
    assert (point.threshold, point.found, point.recall, point.false_clips) == (None, 0, 0.0, 0)
    # per class there is always q = 0, above every non-target score (here: nothing found)
    per_class = class_recall_at_rate(pool, 0.02)
    assert per_class is not None and per_class.thresholds["gunshot"] == 0.900001
    assert per_class.found == 0


def test_pooled_figures_are_pooled_not_averaged() -> None:
    only_targets = [_row("gunshot", True, s) for s in (0.85, 0.75)]
    pooled = clip_recall_figures(clip_pool(HAND_MADE + only_targets, LABELS))
    assert pooled is not None
    single = pooled.single_threshold
    # 2 %: above 0.7 the lowest score is 0.75 -> 0.99, 0.9, 0.8, 0.85, 0.75 of 8
    assert (single.points[1].threshold, single.points[1].found) == (0.75, 5)
    assert single.points[1].recall == 0.625  # not the mean of 0.5 and 1.0
    x = clip_recall_figures(clip_pool(HAND_MADE, LABELS), pooled)
    y = clip_recall_figures(clip_pool(only_targets, LABELS), pooled)
    assert x is not None and x.basis == "own" and x.single_threshold.points[1].recall == 0.5
    assert y is not None and y.basis == "pooled_thresholds"
    assert [p.found for p in y.single_threshold.points] == [0, 2, 2]  # at 0.99, 0.75, 0.6
    assert y.single_threshold.points[1].false_clip_rate is None
    assert clip_recall_figures(clip_pool(only_targets, LABELS)) is None  # no pooled thresholds


# --- builds for a trained backend --------------------------------------------------------


def _build(root: Path, name: str, excluded: list[str], **extra: object) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / MODEL_FILE).write_bytes(b"not a model: the stand-in classifier never reads it")
    (folder / DIGEST_FILE).write_text("0" * 64 + "\n", encoding="utf-8")
    info = {"excluded_sources": excluded, "model_id": f"compact-{name}", **extra}
    (folder / BUILD_FILE).write_text(json.dumps(info), encoding="utf-8")
    return folder


@pytest.fixture
def builds(tmp_path: Path) -> Path:
    root = tmp_path / "builds"
    _build(root, "02-no-c", ["o/c"], thresholds={"gunshot": 0.4})
    _build(root, "00-no-a-b", ["o/a", "o/b"])
    _build(root, "01-no-a", ["o/a"])
    return root


def test_build_for_a_source_is_the_first_that_excluded_it(builds: Path) -> None:
    found = load_builds(builds)
    assert [b.name for b in found] == ["00-no-a-b", "01-no-a", "02-no-c"]
    assert build_for("o/a", found).name == "00-no-a-b"  # type: ignore[union-attr]
    assert build_for("o/b", found).name == "00-no-a-b"  # type: ignore[union-attr]
    assert build_for("o/c", found).name == "02-no-c"  # type: ignore[union-attr]
    assert build_for("o/d", found) is None


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda f: (f / BUILD_FILE).unlink(), "has no build.json"),
        (lambda f: (f / MODEL_FILE).unlink(), f"lacks {MODEL_FILE}"),
        (lambda f: (f / BUILD_FILE).write_text("{", encoding="utf-8"), "is not valid JSON"),
        (
            lambda f: (f / BUILD_FILE).write_text(
                json.dumps({"excluded_sources": ["x"], "model_id": "m", "note": 1}),
                encoding="utf-8",
            ),
            "note: Extra inputs are not permitted",
        ),
        (
            lambda f: (f / BUILD_FILE).write_text(
                json.dumps({"excluded_sources": ["x"], "model_id": "m", "thresholds": {"x": 1}}),
                encoding="utf-8",
            ),
            "thresholds.x",
        ),
        (
            lambda f: (f / BUILD_FILE).write_text(
                json.dumps({"excluded_sources": [], "model_id": "m"}), encoding="utf-8"
            ),
            "excluded_sources",
        ),
    ],
)
def test_a_bad_build_is_a_clear_error(builds: Path, damage, expected: str) -> None:  # type: ignore[no-untyped-def]
    damage(builds / "01-no-a")
    with pytest.raises(BuildError, match="01-no-a") as caught:
        load_builds(builds)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


class _BuildTone(ToneClassifier):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.model_id = f"tone@{name}"  # type: ignore[misc]


def test_trained_backend_uses_the_build_that_left_the_source_out(
    dirs: tuple[Path, Path], builds: Path
) -> None:
    asked: list[str] = []

    def make(options: EvalOptions, settings: NodeSettings) -> ToneClassifier:
        assert settings.classifier.model_dir is not None and options.backend == "compact"
        asked.append(settings.classifier.model_dir.name)
        return _BuildTone(settings.classifier.model_dir.name)

    r = run_source_split(
        SourceSplitOptions(data_dirs=dirs, backend="compact", builds=builds, mode="clips"),
        make=make,
    )
    assert asked == ["00-no-a-b", "02-no-c"]  # one classifier per build, made once
    assert r.model_ids == {"o/a": "tone@00-no-a-b", "o/b": "tone@00-no-a-b", "o/c": "tone@02-no-c"}
    a, c, d = (_block(r, s) for s in ("o/a", "o/c", "o/d"))
    assert a.build == "00-no-a-b" and a.thresholds_from == "config"
    assert c.build == "02-no-c" and c.thresholds_from == "build"
    assert c.thresholds["gunshot"] == 0.4 and c.thresholds["siren"] == 0.5
    assert d.status == "skipped" and d.deployed is None
    assert d.skip_reason is not None and "excluded_sources" in d.skip_reason
    assert (d.n_clips, d.n_targets) == (1, 1)
    assert r.overall.sources_skipped == ["o/d"] and r.overall.n_clips == 11
    assert r.builds_dir == str(builds)


def _bundled_build(root: Path, name: str, excluded: list[str], **extra: object) -> Path:
    """A build folder holding a copy of the bundled ouie-compact (the real loading path)."""
    from importlib import resources

    folder = _build(root, name, excluded, **extra)
    bundle = resources.files("ouie").joinpath("models_bundled")
    for file in (MODEL_FILE, DIGEST_FILE):
        (folder / file).write_bytes(bundle.joinpath(file).read_bytes())
    return folder


def test_compact_builds_load_through_the_model_dir(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    import hashlib

    root = tmp_path / "builds"
    _bundled_build(root, "a", ["o/a", "o/b", "o/d"])
    _bundled_build(root, "b", ["o/c"], thresholds={"siren": 0.3})
    out = tmp_path / "compact.json"
    run = _invoke(
        "--split", "source", "--data", str(dirs[0]), "--data", str(dirs[1]),
        "--backend", "compact", "--builds", str(root), "--mode", "clips", "--json", str(out),
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    r = SourceSplitResult.model_validate_json(out.read_text(encoding="utf-8"))
    digest = hashlib.sha256((root / "a" / MODEL_FILE).read_bytes()).hexdigest()[:8]
    assert set(r.model_ids.values()) == {f"ouie-compact@{digest}"}
    c = _block(r, "o/c")
    assert c.build == "b" and c.thresholds_from == "build" and c.thresholds["siren"] == 0.3
    assert _block(r, "o/a").thresholds_from == "config"

    (root / "b" / MODEL_FILE).write_bytes(b"damaged")
    run = _invoke(
        "--split", "source", "--data", str(dirs[0]), "--backend", "compact",
        "--builds", str(root), "--mode", "clips", "--json", str(out),
    )  # fmt: skip
    assert run.exit_code == 2
    line = _error_line(run.stderr)
    assert line.startswith("error:") and "sha256" in line and "/b/" in line


# --- the command line --------------------------------------------------------------------


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["eval", *args])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--split", "source", "--backend", "compact"], "would not be source-disjoint"),
        (["--split", "source", "--backend", "tone", "--fold", "1"], "exclude each other"),
        (["--backend", "tone", "--data", "{main}"], "need --split source"),
        (["--backend", "tone", "--builds", "{tmp}"], "--builds needs --split source"),
        (["--split", "source", "--backend", "yamnet", "--builds", "{tmp}"], "trained backends"),
        (["--split", "source", "--backend", "compact", "--builds", "{tmp}/none"], "no such"),
        (["--split", "source", "--backend", "tone", "--plots", "{tmp}"], "--plots"),
    ],
)
def test_bad_combinations_are_one_line_errors(
    dirs: tuple[Path, Path], tmp_path: Path, args: list[str], expected: str
) -> None:
    main, _ = dirs
    filled = [a.format(main=main, tmp=tmp_path) for a in args]
    out = _invoke("--data", str(main), *filled, "--json", str(tmp_path / "o.json"))
    assert out.exit_code == 2, out.output
    line = _error_line(out.stderr)
    assert line.startswith("error:") and expected in line
    assert not (tmp_path / "o.json").exists()


def test_cli_writes_json_report_and_summary(
    dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(split_module, "make_classifier", _tone)
    main, extra = dirs
    out, html = tmp_path / "loso.json", tmp_path / "loso.html"
    run = _invoke(
        "--split", "source", "--data", str(main), "--data", str(extra), "--backend", "tone",
        "--mode", "clips", "--json", str(out), "--report", str(html),
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    result = SourceSplitResult.model_validate_json(out.read_text(encoding="utf-8"))
    assert result.split == "source" and result.data_dirs == [str(main), str(extra)]
    assert len(result.sources) == 4 and result.mode == "clips"
    assert "pooled" in run.stderr and "o/d" in run.stderr
    assert "balanced recall at 1% / 2% / 5% false clips" in run.stderr
    assert "0.0 per hour on street ambience (0 on 0.01 h)" in run.stderr
    assert "<table>" in html.read_text(encoding="utf-8")


# --- the real data (../shared) -----------------------------------------------------------


@pytest.mark.shared
def test_dev_and_extra_sources(dev_data_dir: Path) -> None:
    extra = dev_data_dir.parent / "extra"
    if not (extra / "labels.csv").is_file():
        message = f"extra dataset not found at {extra}"
        if os.environ.get("OUIE_REQUIRE_SHARED") == "1":
            pytest.fail(message + "; OUIE_REQUIRE_SHARED=1 makes this a failure")
        pytest.skip(message)
    items, listed, skipped = load_items([dev_data_dir, extra])
    sources = group_by_source(items, listed)
    assert sum(listed.values()) == 1176 + 114 and skipped == []
    assert len(sources) == 19
    by_name = {s.source: s for s in sources}
    assert len(by_name["RosameliaCarioni/gunshot_detection"].items) == 59


def test_street_false_alarms_count_street_ambience_only(result: SourceSplitResult) -> None:
    street = result.street_false_alarms()  # the 35 s background clip, not rain or dog barks
    assert street.hours == pytest.approx(35 / 3600) and street.events == 0
    assert street.per_hour == 0.0

    def row(label: str, seconds: float, events: list[str]) -> ClipScoreRow:
        return ClipScoreRow(
            data_dir=".", file=f"{label}.wav", source="o/x", label=label, duration_s=seconds,
            scores={}, events=events,
        )  # fmt: skip

    rows = [
        row("traffic", 1800.0, ["car_alarm"]),
        row("background", 1800.0, []),
        row("door_knock", 5.0, ["gunshot", "gunshot"]),  # a hard look-alike: not street
        row("speech", 60.0, ["scream"]),
        row("gunshot", 2.0, ["gunshot"]),
    ]
    street = result.model_copy(update={"clips": rows}).street_false_alarms()
    assert (street.hours, street.events, street.per_hour) == (1.0, 1, 1.0)
    assert result.model_copy(update={"clips": rows[2:]}).street_false_alarms().per_hour is None
