"""The harness end to end on a generated dataset with a classifier whose answers are exact."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from ouie.config.node import EventSettings, PrivacySettings
from ouie.eval.dataset import load_dataset
from ouie.eval.detection import OfflineDetector, stream_events
from ouie.eval.result import EvalResult
from ouie.eval.runner import EvalError, EvalOptions, EvalRun, latency_subset, run_eval
from ouie.node.pipeline import DetectionPipeline, score_timeline
from ouie.privacy.speech_guard import SpeechGuard
from tests.eval.fakes import ToneClassifier, write_dataset


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("evaldata"))


@pytest.fixture(scope="module")
def full_run(data_dir: Path) -> EvalRun:
    return run_eval(EvalOptions(data_dir=data_dir, backend="tone"), classifier=ToneClassifier())


def test_everything_findable_is_found(full_run: EvalRun) -> None:
    r = full_run.result
    assert (r.n_clips, r.n_mixtures, r.n_files) == (12, 7, 19)
    assert r.event_f1 == 1.0
    assert r.error_rate == 0.0
    assert r.clip_accuracy == 1.0
    assert r.false_alarms_per_hour == 0.0
    assert r.speech_false_alarms_per_hour == 0.0
    assert r.background_hours == pytest.approx((35 + 3 * 1) / 3600, abs=1e-4)
    assert r.speech_hours == pytest.approx(3 / 3600, abs=1e-4)
    assert [e.event_f1 for e in r.by_ebr] == [1.0, 1.0, 1.0]
    assert r.per_class_basis == "mixtures"
    assert r.per_class["gunshot"].n == 5 and r.per_class["gunshot"].f1 == 1.0
    assert r.per_class["siren"].n == 2 and r.per_class["siren"].recall == 1.0
    assert r.per_class["scream"].f1 is None and r.per_class["scream"].n == 0
    assert r.mean_average_precision is not None and r.mean_average_precision > 0.8
    assert r.psds is not None and r.psds > 0.5  # gunshot only: siren has < 5 events
    assert r.latency_s is not None
    assert r.latency_s.n == 7 and r.latency_s.missed == 0
    assert r.latency_s.p95 is not None and 0.0 < r.latency_s.p95 < 1.0
    assert r.confusion["gunshot"] == {"gunshot": 5}
    assert r.confusion["speech"] == {"none": 1}
    assert r.localisation is None
    assert r.mixtures is not None and r.mixtures.ambience + r.mixtures.constructed == 7
    assert set(r.versions) >= {"sed_eval", "sed_scores_eval", "numpy"}
    assert len(full_run.traces) == 2  # one per label
    # the JSON is the documented model, round trip included
    assert EvalResult.model_validate_json(r.model_dump_json()) == r


def test_runs_are_deterministic(data_dir: Path, full_run: EvalRun) -> None:
    again = run_eval(
        EvalOptions(data_dir=data_dir, backend="tone", mode="mixtures", latency_mixtures=1),
        classifier=ToneClassifier(),
    ).result
    first = full_run.result
    assert again.per_class == first.per_class
    assert again.by_ebr == first.by_ebr
    assert again.segment_f1 == first.segment_f1


def test_latency_is_measured_on_the_streaming_path(data_dir: Path) -> None:
    """The latency figure equals emitted_at − onset from DetectionPipeline.push itself."""
    from ouie.eval.audio import clip_duration
    from ouie.eval.mixtures import MixtureSet, MixtureSpec

    clips = load_dataset(data_dir)
    durations = {c.file: clip_duration(c.path) for c in clips}
    mixture = next(iter(MixtureSet(clips, durations, MixtureSpec())))
    guard = SpeechGuard(PrivacySettings())
    ours = stream_events(
        mixture.audio, mixture.rate, ToneClassifier(), EventSettings(), PrivacySettings(), guard
    )
    pipeline = DetectionPipeline(ToneClassifier(), EventSettings(), PrivacySettings(), mixture.rate)
    step = round(0.1 * mixture.rate)
    by_hand = []
    for start in range(0, mixture.audio.size, step):
        by_hand.extend(pipeline.push(mixture.audio[start : start + step]))
    by_hand.extend(pipeline.flush())
    assert [(e.label, e.onset_s, e.emitted_at_s) for e in ours] == [
        (e.label, e.onset_s, e.emitted_at_s) for e in by_hand
    ]
    (event,) = ours
    latency = event.emitted_at_s - mixture.events[0].onset_s
    assert 0.0 < latency < 1.0


def test_recorded_timeline_equals_a_plain_score_timeline() -> None:
    rng = np.random.default_rng(0)
    audio = (0.01 * rng.standard_normal(44100 * 3)).astype(np.float32)
    classifier = ToneClassifier()
    detector = OfflineDetector(
        classifier, EventSettings(), PrivacySettings(), SpeechGuard(PrivacySettings())
    )
    result = detector.run(audio, 44100)
    times, scores = score_timeline(audio, 44100, classifier)
    assert np.array_equal(result.timeline.scores, scores)
    assert result.timeline.boundaries_s.size == times.size + 1


def test_modes(data_dir: Path) -> None:
    clips_only = run_eval(
        EvalOptions(data_dir=data_dir, backend="tone", mode="clips"), classifier=ToneClassifier()
    ).result
    assert clips_only.event_f1 is None and clips_only.latency_s is None
    assert clips_only.mixtures is None and clips_only.n_mixtures == 0
    assert clips_only.per_class_basis == "clips"
    assert clips_only.per_class["gunshot"].f1 == 1.0 and clips_only.per_class["gunshot"].n == 5
    assert clips_only.clip_accuracy == 1.0
    mixtures_only = run_eval(
        EvalOptions(data_dir=data_dir, backend="tone", mode="mixtures", latency_mixtures=2),
        classifier=ToneClassifier(),
    ).result
    assert mixtures_only.clip_accuracy is None
    assert mixtures_only.false_alarms_per_hour == 0.0  # non-target clips always run
    assert mixtures_only.confusion_basis == "mixtures"
    assert mixtures_only.latency_s is not None and mixtures_only.latency_s.n_mixtures == 2


def test_fold_selection_and_errors(data_dir: Path, tmp_path: Path) -> None:
    clips = load_dataset(data_dir)
    fold = clips[0].fold
    run = run_eval(
        EvalOptions(data_dir=data_dir, backend="tone", fold=fold, mode="clips"),
        classifier=ToneClassifier(),
    )
    assert run.result.fold == fold
    assert run.result.n_clips == sum(c.fold == fold for c in clips)
    empty = (
        next(k for k in range(5) if all(c.fold != k for c in clips))
        if len({c.fold for c in clips}) < 5
        else None
    )
    if empty is not None:
        with pytest.raises(EvalError, match="holds no clips"):
            run_eval(EvalOptions(data_dir=data_dir, fold=empty), classifier=ToneClassifier())
    with pytest.raises(EvalError, match="folds are 0 to 4"):
        run_eval(EvalOptions(data_dir=data_dir, fold=7), classifier=ToneClassifier())
    with pytest.raises(EvalError, match="no such directory"):
        run_eval(EvalOptions(data_dir=tmp_path / "nope"), classifier=ToneClassifier())
    with pytest.raises(EvalError, match=r"has no labels\.csv"):
        run_eval(EvalOptions(data_dir=tmp_path), classifier=ToneClassifier())
    (tmp_path / "labels.csv").write_text("path,label\nx.wav,gunshot\n", encoding="utf-8")
    with pytest.raises(EvalError, match="lacks required column"):
        run_eval(EvalOptions(data_dir=tmp_path), classifier=ToneClassifier())


def test_unreadable_audio_is_skipped_and_listed(data_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    (copy / "broken.wav").write_bytes(b"RIFF not really a wav")
    with (copy / "labels.csv").open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow(["broken.wav", "gunshot", "", "", ""])
    result = run_eval(
        EvalOptions(data_dir=copy, backend="tone", mode="clips"), classifier=ToneClassifier()
    ).result
    assert len(result.skipped_files) == 1 and "broken.wav" in result.skipped_files[0]
    assert result.clip_accuracy == 1.0


def test_latency_subset_spreads() -> None:
    assert latency_subset(10, 0) == list(range(10))
    assert latency_subset(10, 3) == [0, 4, 9] or latency_subset(10, 3) == [0, 5, 9]
    assert latency_subset(2, 60) == [0, 1]


def test_activity_offsets_follow_the_score_down_to_hysteresis() -> None:
    from ouie.core.labels import EventLabel
    from ouie.eval.detection import with_activity_offsets
    from ouie.eval.metrics import ScoreTimeline
    from ouie.node.pipeline import DetectedEvent

    bounds = np.arange(0.0, 10.5, 0.5)  # 20 frames of 0.5 s
    scores = np.full((20, 8), 0.05, dtype=np.float32)
    scores[4:10, 0] = [0.6, 0.9, 0.8, 0.4, 0.36, 0.2]  # >= 0.5 × 0.7 up to frame 8
    event = DetectedEvent(EventLabel.GUNSHOT, 2.1, 3.0, 0.9, -20.0, False, 3.0)
    (extended,) = with_activity_offsets([event], ScoreTimeline(bounds, scores), EventSettings())
    assert extended.onset_s == 2.1
    assert extended.offset_s == pytest.approx(4.5)  # end of frame 8
    quiet = DetectedEvent(EventLabel.SIREN, 2.1, 3.0, 0.9, -20.0, False, 3.0)
    (same,) = with_activity_offsets([quiet], ScoreTimeline(bounds, scores), EventSettings())
    assert same == quiet
