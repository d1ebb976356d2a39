"""``ouie eval tune``: which folds are read, and how a threshold is chosen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ouie.config.node import DEFAULT_THRESHOLDS
from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.eval.dataset import Clip, load_dataset, select_folds
from ouie.eval.tune import MIN_POSITIVES, choose, tune, tuning_folds
from tests.eval.fakes import ToneClassifier, write_dataset


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
