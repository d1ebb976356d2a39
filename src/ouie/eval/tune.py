"""``ouie eval tune``: choose per-label thresholds on development folds.

For each clip of the tuning folds the classifier's highest window score per label is
taken. For each label with enough examples, the threshold maximising clip-level F1 —
positives are that label's clips, negatives every non-target clip (speech included) and
every other target clip except a confusable sibling (gunshot/explosion) — is kept; ties go
to the higher threshold, which favours fewer false alarms. A label with too few clips to
measure F1 gets the lowest threshold, at least the pipeline default, at which at most 2 %
of its negative clips fire: it cannot be made more sensitive, only quieter. The held-out
fold is never read, so ``ouie eval --fold K`` on it stays an honest figure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ouie.config.node import DEFAULT_THRESHOLDS
from ouie.core.labels import EVENT_LABELS, EventLabel, is_target
from ouie.eval.dataset import N_FOLDS, Clip, load_dataset, select_folds
from ouie.node.audio_io import AudioInputError, read_audio
from ouie.node.classifiers.base import Classifier
from ouie.node.pipeline import score_timeline
from ouie.node.tuned import TunedThresholds, model_family

MIN_POSITIVES = 5
#: A label with too few clips to measure F1 is tuned on its negatives alone: the lowest
#: threshold (at least the default) at which at most this share of the other clips fire.
MAX_NEGATIVE_FIRING = 0.02
MIN_USEFUL_F1 = 0.3  # below this the label is not learnable from these scores: keep default
GRID = np.round(np.arange(0.1, 0.96, 0.01), 2)  # below 0.1 street noise alone crosses it
SIBLINGS: dict[EventLabel, frozenset[EventLabel]] = {
    EventLabel.GUNSHOT: frozenset({EventLabel.EXPLOSION}),
    EventLabel.EXPLOSION: frozenset({EventLabel.GUNSHOT}),
}


@dataclass(frozen=True)
class LabelChoice:
    label: EventLabel
    threshold: float
    f1: float | None
    positives: int
    negatives: int


def clip_max_scores(
    clips: Sequence[Clip], classifier: Classifier, advance: Callable[[], None] = lambda: None
) -> tuple[list[Clip], npt.NDArray[np.float32]]:
    kept: list[Clip] = []
    rows: list[npt.NDArray[np.float32]] = []
    for clip in clips:
        advance()
        try:
            audio, rate = read_audio(clip.path)
        except AudioInputError:
            continue
        _, scores = score_timeline(audio, rate, classifier)
        if len(scores) == 0:
            continue
        kept.append(clip)
        rows.append(scores.max(axis=0))
    return kept, np.stack(rows) if rows else np.zeros((0, len(EVENT_LABELS)), np.float32)


def choose(
    label: EventLabel, clips: Sequence[Clip], maxima: npt.NDArray[np.float32]
) -> LabelChoice:
    column = EVENT_LABELS.index(label)
    positive = np.array([clip.label == label.value for clip in clips])
    siblings = SIBLINGS.get(label, frozenset())
    negative = np.array(
        [
            clip.label != label.value
            and not (is_target(clip.label) and EventLabel(clip.label) in siblings)
            for clip in clips
        ]
    )
    n_pos, n_neg = int(positive.sum()), int(negative.sum())
    scores = maxima[:, column]
    if n_pos < MIN_POSITIVES:
        threshold = _negatives_only(scores[negative], DEFAULT_THRESHOLDS[label])
        return LabelChoice(label, threshold, None, n_pos, n_neg)
    best_threshold, best_f1 = DEFAULT_THRESHOLDS[label], -1.0
    for threshold in GRID:
        hit = scores >= threshold
        tp = int(np.sum(hit & positive))
        fp = int(np.sum(hit & negative))
        fn = n_pos - tp
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 >= best_f1:
            best_threshold, best_f1 = float(threshold), f1
    if best_f1 < MIN_USEFUL_F1:
        return LabelChoice(label, DEFAULT_THRESHOLDS[label], round(best_f1, 4), n_pos, n_neg)
    return LabelChoice(label, best_threshold, round(best_f1, 4), n_pos, n_neg)


def _negatives_only(negative_scores: npt.NDArray[np.float32], default: float) -> float:
    """The lowest grid threshold ≥ ``default`` at which at most ``MAX_NEGATIVE_FIRING`` of
    the negative clips fire (the grid's top when none is that quiet)."""
    for threshold in GRID[default <= GRID]:
        if negative_scores.size == 0 or np.mean(negative_scores >= threshold) <= (
            MAX_NEGATIVE_FIRING
        ):
            return float(threshold)
    return float(GRID[-1])


def tuning_folds(held_out_fold: int, folds: Sequence[int] | None = None) -> list[int]:
    """The folds to tune on: ``folds`` when given, else every fold but the held-out one.

    Tuning a model on folds it was trained on picks thresholds for training-set scores, which
    run higher than on new audio; a model trained on some folds is tuned on the others.
    """
    if folds is not None and held_out_fold in folds:
        raise ValueError(f"fold {held_out_fold} is held out and cannot be tuned on")
    chosen = sorted(set(range(N_FOLDS) if folds is None else folds) - {held_out_fold})
    if not chosen or any(not 0 <= f < N_FOLDS for f in chosen):
        raise ValueError(f"tuning folds must be among 0…{N_FOLDS - 1}, got {folds}")
    return chosen


def tune(
    data_dir: Path,
    classifier: Classifier,
    held_out_fold: int,
    advance: Callable[[], None] = lambda: None,
    folds: Sequence[int] | None = None,
) -> tuple[TunedThresholds, list[LabelChoice]]:
    chosen = tuning_folds(held_out_fold, folds)
    clips = select_folds(load_dataset(data_dir), chosen)
    kept, maxima = clip_max_scores(clips, classifier, advance)
    choices = [choose(label, kept, maxima) for label in EVENT_LABELS]
    result = TunedThresholds(
        model_family=model_family(classifier.model_id),
        thresholds={c.label: c.threshold for c in choices},
        tuned_on=f"{data_dir.name}: folds {chosen} "
        f"({len(kept)} clips); fold {held_out_fold} held out",
        objective="clip-level F1 per label vs non-target and other-target clips, thresholds "
        f">= 0.1; labels with < {MIN_POSITIVES} clips: lowest threshold >= default with <= "
        f"{MAX_NEGATIVE_FIRING:.0%} of negative clips firing; best F1 < {MIN_USEFUL_F1}: default",
        date=datetime.now(UTC).strftime("%Y-%m-%d"),
    )
    return result, choices
