"""``ouie eval tune``: choose per-label thresholds on development folds.

For each clip of the tuning folds the classifier's highest window score per label is
taken; a non-target recording longer than ``SEGMENT_S`` counts once per ``SEGMENT_S`` of it,
so ten minutes of street ambience weigh as the 120 quiet stretches they are, not as one
clip. For each label with enough examples, the threshold maximising F1 — positives are that
label's clips, negatives every non-target segment (speech included) and every other target
clip except a confusable sibling (gunshot/explosion) — is kept; ties go to the higher
threshold, which favours fewer false alarms. A label with too few clips to measure F1 gets
the lowest threshold, at least the pipeline default, at which at most 2 % of its negatives
fire: it cannot be made more sensitive, only quieter.

Then the privacy floor: every threshold is raised above the highest score that any speech
recording of the tuning folds reaches, as recorded and mixed over generated street noise
and over a real street background of the same folds (``SPEECH_MARGIN`` above it). An event
on speech is a privacy failure, not a trade-off against recall, so no F1 gain may buy one.

The held-out fold is never read, so ``ouie eval --fold K`` on it stays an honest figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ouie.config.node import DEFAULT_THRESHOLDS
from ouie.core.labels import EVENT_LABELS, EventLabel, is_target
from ouie.eval.dataset import N_FOLDS, Clip, load_dataset, select_folds
from ouie.eval.noise import RATE, mix, street_noise
from ouie.node.audio_io import AudioInputError, read_audio, to_rate
from ouie.node.classifiers.base import Classifier, FloatArray
from ouie.node.pipeline import score_timeline
from ouie.node.tuned import TunedThresholds, model_family

MIN_POSITIVES = 5
#: A label with too few clips to measure F1 is tuned on its negatives alone: the lowest
#: threshold (at least the default) at which at most this share of the other clips fire.
MAX_NEGATIVE_FIRING = 0.02
SEGMENT_S = 5.0  # a negative recording counts once per this much audio
SPEECH_LABEL = "speech"
SPEECH_MARGIN = 0.02  # a threshold sits at least this far above any speech score
SPEECH_IN_NOISE_DB = 6.0  # speech over street noise, as `ouie eval privacy` mixes it
BACKGROUND_LABEL = "background"
#: A background mixed under speech must be quiet for the classifier on its own (every label
#: under this), so that what the mixture scores comes from the speech over it.
QUIET_BACKGROUND = 0.3
TOP_THRESHOLD = 0.99  # the privacy floor may go above the F1 grid, up to here
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
    #: The speech recordings' highest score for this label (None: no speech to check).
    speech_max: float | None = None
    #: Whether the privacy floor, not F1, set the threshold.
    raised_for_speech: bool = False


@dataclass
class TuningScores:
    """Per-unit maxima: ``units[i]`` scored ``maxima[i]``; ``speech`` one row per speech
    recording as recorded and per mixture of it (``speech_in_noise_maxima``)."""

    units: list[Clip]
    maxima: npt.NDArray[np.float32]
    speech: npt.NDArray[np.float32]


def segment_maxima(
    times: npt.NDArray[np.float64], scores: npt.NDArray[np.float32], segment_s: float
) -> npt.NDArray[np.float32]:
    """The highest score per label in each ``segment_s`` of windows (by window start)."""
    index = np.floor(times / segment_s).astype(np.int64)
    return np.stack([scores[index == i].max(axis=0) for i in np.unique(index)])


def _empty() -> npt.NDArray[np.float32]:
    return np.zeros((0, len(EVENT_LABELS)), np.float32)


def clip_max_scores(
    clips: Sequence[Clip],
    classifier: Classifier,
    advance: Callable[[], None] = lambda: None,
    segment_s: float = SEGMENT_S,
) -> TuningScores:
    units: list[Clip] = []
    rows: list[npt.NDArray[np.float32]] = []
    speech_rows: list[npt.NDArray[np.float32]] = []
    speech_audio: list[FloatArray] = []
    backgrounds: list[FloatArray] = []
    for clip in clips:
        advance()
        try:
            audio, rate = read_audio(clip.path)
        except AudioInputError:
            continue
        times, scores = score_timeline(audio, rate, classifier)
        if len(scores) == 0:
            continue
        if is_target(clip.label):
            units.append(clip)
            rows.append(scores.max(axis=0))
            continue
        segments = segment_maxima(times, scores, segment_s)
        units.extend([clip] * len(segments))
        rows.extend(segments)
        if clip.label == SPEECH_LABEL:
            speech_rows.append(scores.max(axis=0))
            speech_audio.append(to_rate(audio, rate, RATE))
        elif clip.label == BACKGROUND_LABEL and float(scores.max()) < QUIET_BACKGROUND:
            backgrounds.append(to_rate(audio, rate, RATE))
    speech_rows += speech_in_noise_maxima(speech_audio, backgrounds, classifier)
    return TuningScores(
        units,
        np.stack(rows) if rows else _empty(),
        np.stack(speech_rows) if speech_rows else _empty(),
    )


def speech_in_noise_maxima(
    speech: Sequence[FloatArray], backgrounds: Sequence[FloatArray], classifier: Classifier
) -> list[npt.NDArray[np.float32]]:
    """Each speech recording ``SPEECH_IN_NOISE_DB`` over generated street noise and, when
    there are any, over a real street background of the same folds (in turn), as
    ``ouie eval privacy`` mixes them; the highest score per label of each mixture."""
    noise = np.random.default_rng(0)
    out: list[npt.NDArray[np.float32]] = []
    for index, recording in enumerate(speech):
        beds = [street_noise(recording.size, noise)]
        if backgrounds:
            beds.append(backgrounds[index % len(backgrounds)])
        for bed in beds:
            mixture = mix(recording, bed, SPEECH_IN_NOISE_DB)
            out.append(score_timeline(mixture, RATE, classifier)[1].max(axis=0))
    return out


def choose(
    label: EventLabel,
    clips: Sequence[Clip],
    maxima: npt.NDArray[np.float32],
    speech: npt.NDArray[np.float32] | None = None,
) -> LabelChoice:
    """The threshold for ``label``: F1 (or negatives-only) choice, then the privacy floor."""
    choice = _choose_by_score(label, clips, maxima)
    if speech is None or len(speech) == 0:
        return choice
    speech_max = float(speech[:, EVENT_LABELS.index(label)].max())
    floor = privacy_floor(speech_max)
    if floor <= choice.threshold:
        return replace(choice, speech_max=round(speech_max, 4))
    return replace(choice, threshold=floor, speech_max=round(speech_max, 4), raised_for_speech=True)


def privacy_floor(speech_max: float) -> float:
    """The lowest hundredth at least ``SPEECH_MARGIN`` above ``speech_max`` (≤ the top)."""
    return min(TOP_THRESHOLD, math.ceil(round((speech_max + SPEECH_MARGIN) * 100, 6)) / 100)


def _choose_by_score(
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


@dataclass(frozen=True)
class SpeechFloorSource:
    """Another build of the same recipe and the folds it was **not** trained on: its scores
    on those folds' speech recordings also count toward the privacy floor. One tuning fold
    holds a few dozen speech recordings; builds cross-fitted on other folds see more speech
    that is new to them, without reading the held-out fold."""

    classifier: Classifier
    folds: tuple[int, ...]


def speech_floor_clips(dataset: Sequence[Clip], folds: Sequence[int]) -> list[Clip]:
    """What a ``SpeechFloorSource`` scores: the speech, and the backgrounds to mix it over."""
    return [c for c in select_folds(dataset, folds) if c.label in (SPEECH_LABEL, BACKGROUND_LABEL)]


def tune(
    data_dir: Path,
    classifier: Classifier,
    held_out_fold: int,
    advance: Callable[[], None] = lambda: None,
    folds: Sequence[int] | None = None,
    speech_floor_from: Sequence[SpeechFloorSource] = (),
) -> tuple[TunedThresholds, list[LabelChoice]]:
    chosen = tuning_folds(held_out_fold, folds)
    dataset = load_dataset(data_dir)
    clips = select_folds(dataset, chosen)
    scored = clip_max_scores(clips, classifier, advance)
    speech = [scored.speech]
    floor_note = ""
    for source in speech_floor_from:
        extra_folds = tuning_folds(held_out_fold, source.folds)
        extra = speech_floor_clips(dataset, extra_folds)
        speech.append(clip_max_scores(extra, source.classifier, advance).speech)
        floor_note += f"; speech of folds {extra_folds} scored by {source.classifier.model_id}"
    all_speech = np.concatenate(speech)
    choices = [choose(label, scored.units, scored.maxima, all_speech) for label in EVENT_LABELS]
    result = TunedThresholds(
        model_family=model_family(classifier.model_id),
        thresholds={c.label: c.threshold for c in choices},
        tuned_on=f"{data_dir.name}: folds {chosen} "
        f"({len(clips)} clips){floor_note}; fold {held_out_fold} held out",
        objective=f"F1 per label vs non-target {SEGMENT_S:g} s segments and other-target clips, "
        f"thresholds >= 0.1; labels with < {MIN_POSITIVES} clips: lowest threshold >= default "
        f"with <= {MAX_NEGATIVE_FIRING:.0%} of negatives firing; best F1 < {MIN_USEFUL_F1}: "
        f"default; then raised >= {SPEECH_MARGIN} above every speech recording's score "
        f"({len(all_speech)} recordings: as recorded, over generated street noise and over real "
        "street backgrounds)",
        date=datetime.now(UTC).strftime("%Y-%m-%d"),
    )
    return result, choices
