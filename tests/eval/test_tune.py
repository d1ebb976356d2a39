"""``ouie eval tune``: which folds are read, and how a threshold is chosen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ouie.config.node import DEFAULT_THRESHOLDS
from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.eval.dataset import Clip, load_dataset, select_folds
from ouie.eval.tune import (
    MIN_POSITIVES,
    SEGMENT_S,
    SPEECH_MARGIN,
    TOP_THRESHOLD,
    SpeechFloorSource,
    choose,
    clip_max_scores,
    privacy_floor,
    segment_maxima,
    tune,
    tuning_folds,
)
from tests.eval.fakes import TONES, ToneClassifier, write_dataset


def test_default_folds_are_all_but_the_held_out_one() -> None:
    assert tuning_folds(0) == [1, 2, 3, 4]
    assert tuning_folds(2) == [0, 1, 3, 4]


def test_explicit_folds_are_used_as_given() -> None:
    assert tuning_folds(0, [4]) == [4]
    assert tuning_folds(0, [3, 4, 3]) == [3, 4]


@pytest.mark.parametrize(
    ("folds", "message"), [([0, 4], "held out"), ([5], "among"), ([], "among")]
)
def test_bad_folds_are_refused(folds: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tuning_folds(0, folds)


def _clip(label: str, i: int) -> Clip:
    name = f"{label}/{i}.wav"
    return Clip(Path("/nowhere") / name, name, label, None, None, name, 1)


def test_threshold_maximises_clip_f1_and_ignores_the_sibling() -> None:
    clips = [_clip("gunshot", i) for i in range(6)]
    clips += [_clip("explosion", i) for i in range(3)]
    clips += [_clip("dog_bark", i) for i in range(4)]
    column = EVENT_LABELS.index(EventLabel.GUNSHOT)
    maxima = np.zeros((len(clips), len(EVENT_LABELS)), np.float32)
    maxima[:6, column] = [0.9, 0.8, 0.7, 0.6, 0.45, 0.2]
    maxima[6:9, column] = 0.95  # explosions scoring gunshot are not false alarms
    maxima[9:, column] = [0.5, 0.3, 0.1, 0.0]
    choice = choose(EventLabel.GUNSHOT, clips, maxima)
    # 0.11–0.2: six shots and two barks pass, F1 12/14 (best; ties go to the higher);
    # 0.31–0.45: five and one, 10/12; 0.51–0.6: four and none, 8/10.
    assert choice.threshold == pytest.approx(0.2)
    assert choice.f1 == pytest.approx(0.8571, abs=1e-4)
    assert (choice.positives, choice.negatives) == (6, 4)


def test_a_label_with_too_few_clips_is_tuned_on_its_negatives() -> None:
    clips = [_clip("siren", i) for i in range(MIN_POSITIVES - 1)]
    clips += [_clip("dog_bark", i) for i in range(100)]
    column = EVENT_LABELS.index(EventLabel.SIREN)
    maxima = np.zeros((len(clips), len(EVENT_LABELS)), np.float32)
    maxima[: MIN_POSITIVES - 1, column] = 0.99
    maxima[MIN_POSITIVES - 1 :, column] = np.linspace(0.0, 0.9, 100)  # …, 0.8818, 0.8909, 0.9
    choice = choose(EventLabel.SIREN, clips, maxima)
    # 2 of 100 barks may fire: the lowest threshold passing only the top two is 0.89.
    assert choice.threshold == pytest.approx(0.89)
    assert choice.f1 is None
    quiet = maxima.copy()
    quiet[MIN_POSITIVES - 1 :, column] = 0.1
    assert choose(EventLabel.SIREN, clips, quiet).threshold == DEFAULT_THRESHOLDS[EventLabel.SIREN]


def test_tune_reads_only_the_tuning_folds(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    clips = load_dataset(data)
    folds = sorted({clip.fold for clip in clips} - {0})[:2]
    classifier = ToneClassifier()
    result, choices = tune(data, classifier, held_out_fold=0, folds=folds)
    expected = len(select_folds(clips, folds))
    assert result.tuned_on == f"{data.name}: folds {folds} ({expected} clips); fold 0 held out"
    assert result.model_family == "test-tone"
    assert [c.label for c in choices] == list(EVENT_LABELS)


def test_no_speech_recording_may_reach_a_threshold() -> None:
    clips = [_clip("gunshot", i) for i in range(6)] + [_clip("dog_bark", i) for i in range(4)]
    column = EVENT_LABELS.index(EventLabel.GUNSHOT)
    maxima = np.zeros((len(clips), len(EVENT_LABELS)), np.float32)
    maxima[:6, column] = [0.9, 0.8, 0.7, 0.6, 0.45, 0.2]
    by_score = choose(EventLabel.GUNSHOT, clips, maxima)
    assert by_score.threshold == pytest.approx(0.2)
    speech = np.zeros((3, len(EVENT_LABELS)), np.float32)
    speech[:, column] = [0.1, 0.613, 0.3]
    floored = choose(EventLabel.GUNSHOT, clips, maxima, speech)
    # F1 alone would keep 0.2; one speech recording reaches 0.613, so 0.613 + 0.02 → 0.64.
    assert floored.threshold == pytest.approx(0.64)
    assert floored.raised_for_speech and floored.speech_max == pytest.approx(0.613)
    assert floored.f1 == by_score.f1  # reported as measured, not recomputed
    quiet = speech * 0.2  # highest 0.123: floor 0.15, under the F1 choice
    kept = choose(EventLabel.GUNSHOT, clips, maxima, quiet)
    assert kept.threshold == pytest.approx(0.2) and not kept.raised_for_speech


@pytest.mark.parametrize(
    ("speech_max", "floor"),
    [(0.0, SPEECH_MARGIN), (0.5, 0.52), (0.501, 0.53), (0.97, TOP_THRESHOLD), (1.0, TOP_THRESHOLD)],
)
def test_the_privacy_floor_sits_a_margin_above_speech(speech_max: float, floor: float) -> None:
    assert privacy_floor(speech_max) == pytest.approx(floor)


def test_long_recordings_count_once_per_segment() -> None:
    times = np.arange(0.0, 12.0, 0.25)  # 48 windows: segments [0, 5), [5, 10), [10, 12)
    scores = np.zeros((times.size, len(EVENT_LABELS)), np.float32)
    scores[3, 0], scores[25, 0], scores[47, 1] = 0.7, 0.4, 0.9
    maxima = segment_maxima(times, scores, 5.0)
    assert maxima.shape == (3, len(EVENT_LABELS))
    assert maxima[:, 0].tolist() == pytest.approx([0.7, 0.4, 0.0])
    assert maxima[:, 1].tolist() == pytest.approx([0.0, 0.0, 0.9])


def test_scores_split_negatives_and_check_speech_in_noise(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    clips = load_dataset(data)
    scored = clip_max_scores(clips, ToneClassifier())
    ambience = [u for u in scored.units if u.label == "background"]
    assert len(ambience) == int(np.ceil(35.0 / SEGMENT_S))  # 35 s of street ambience
    assert sum(u.label == "gunshot" for u in scored.units) == 5  # targets: once each
    assert len(scored.units) == len(scored.maxima)
    # The one speech clip as recorded, over generated street noise and over the (quiet)
    # ambience of the same folds; none holds a tone.
    assert scored.speech.shape == (3, len(EVENT_LABELS))
    assert float(scored.speech.max()) < 0.5
    assert set(TONES) <= set(EVENT_LABELS)


class _ConstantClassifier(ToneClassifier):
    """Scores every window ``value`` for one label (a build that hears explosions in speech)."""

    model_id = "test-constant"

    def __init__(self, label: EventLabel, value: float) -> None:
        super().__init__()
        self.label, self.value = label, value

    def scores(self, frames: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
        out = np.full((len(frames), len(EVENT_LABELS)), 0.02, dtype=np.float32)
        out[:, EVENT_LABELS.index(self.label)] = self.value
        return out


def test_a_cross_fitted_build_raises_the_privacy_floor(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    clips = load_dataset(data)
    speech_fold = next(c.fold for c in clips if c.label == "speech")
    others = sorted({c.fold for c in clips} - {speech_fold, 0})
    if speech_fold == 0 or not others:
        pytest.skip("the fake dataset's speech clip landed in the held-out fold")
    plain, _ = tune(data, ToneClassifier(), held_out_fold=0, folds=others)
    source = SpeechFloorSource(_ConstantClassifier(EventLabel.EXPLOSION, 0.7), (speech_fold,))
    floored, choices = tune(
        data, ToneClassifier(), held_out_fold=0, folds=others, speech_floor_from=[source]
    )
    assert floored.thresholds[EventLabel.EXPLOSION] == pytest.approx(0.72)
    assert plain.thresholds[EventLabel.EXPLOSION] < 0.72
    explosion = next(c for c in choices if c.label == EventLabel.EXPLOSION)
    assert explosion.raised_for_speech
    assert f"speech of folds [{speech_fold}] scored by test-constant" in floored.tuned_on
    with pytest.raises(ValueError, match="held out"):
        tune(
            data,
            ToneClassifier(),
            held_out_fold=0,
            folds=others,
            speech_floor_from=[SpeechFloorSource(ToneClassifier(), (0,))],
        )
