"""Replaying the node's event logic per label and threshold on scores computed once.

``ouie eval tune --split source`` counts, for every label and every threshold of a grid,
the events ``detect_offline`` would emit on a clip. The classifier is the expensive part,
so each clip is scored once (``score_clip``: the signal and window grid ``detect_offline``
itself uses) and ``detect_offline`` is run again per (label, threshold) with a stand-in
classifier that hands back the stored rows (``ReplayClassifier``): the event stage, onset
refinement, cut-off check and speech guard are the node's own code, unchanged.

Per label, the label is replayed **alone**: every other column of the stored rows is 0, so
no other label can confirm and ``one_label_per_window`` never drops one of its events for
another label's. Events per label are therefore those the label would raise on its own (in
a deployment another label may take some of them over; never more).

Two exact shortcuts: a threshold above the highest stored score of the label's column
cannot be reached (the median smoothing never exceeds the largest value it smooths), so it
gives no event without a replay; and the speech guard's decision, a function of the label,
the peak score and the audio span only, is remembered per clip (``CachedGuard``), since the
same confirmation recurs at neighbouring thresholds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ouie.config.node import EventSettings, PrivacySettings
from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.node.audio_io import mix_down, to_rate
from ouie.node.classifiers.base import Classifier, ClassifierWrapper
from ouie.node.pipeline import DetectedEvent, detect_offline, score_timeline
from ouie.privacy.speech_guard import GuardDecision, SpeechGuard

FloatArray = npt.NDArray[np.float32]


class ReplayError(RuntimeError):
    """``detect_offline`` asked for other windows than were scored (a pipeline change)."""


@dataclass(frozen=True)
class ScoredClip:
    """A clip as ``detect_offline`` sees it: the signal at the classifier's rate and the
    classifier's rows over its window grid (scored once)."""

    signal: FloatArray
    rows: FloatArray  # [n_windows, len(EVENT_LABELS)]
    duration_s: float


def model_signal(audio: FloatArray, rate: int, classifier: Classifier) -> FloatArray:
    """The samples ``detect_offline`` scores: mono, finite, clipped, at the model's rate."""
    mono = np.clip(mix_down(np.nan_to_num(audio)), -1.0, 1.0)
    return to_rate(mono, rate, classifier.sample_rate)


def score_clip(audio: FloatArray, rate: int, classifier: Classifier) -> ScoredClip:
    """Score a clip once, on the window grid of ``detect_offline``."""
    signal = model_signal(audio, rate, classifier)
    _, rows = score_timeline(signal, classifier.sample_rate, classifier)
    return ScoredClip(signal, np.asarray(rows, dtype=np.float32), audio.shape[0] / rate)


class ReplayClassifier(ClassifierWrapper):
    """Stands in for ``inner`` inside ``detect_offline``: hands back the stored rows in order,
    with every column but ``label``'s set to 0."""

    def __init__(self, inner: Classifier, rows: FloatArray, label: EventLabel) -> None:
        super().__init__(inner)
        column = EVENT_LABELS.index(label)
        self._rows = np.zeros_like(rows)
        self._rows[:, column] = rows[:, column]
        self._next = 0

    def rewind(self) -> None:
        self._next = 0

    @property
    def exhausted(self) -> bool:
        return self._next == len(self._rows)

    def scores(self, frames: FloatArray) -> FloatArray:
        end = self._next + len(frames)
        if end > len(self._rows):
            raise ReplayError(f"asked for window {end} of {len(self._rows)} scored")
        out = self._rows[self._next : end]
        self._next = end
        return out


class CachedGuard(SpeechGuard):
    """The speech guard, remembering each decision by (label, peak score, audio span)."""

    def __init__(self, settings: PrivacySettings) -> None:
        super().__init__(settings)
        self._decisions: dict[tuple[EventLabel, float, int, bytes], GuardDecision] = {}
        self.calls = 0  # decisions really computed (silero runs)

    def forget(self) -> None:
        self._decisions.clear()

    def decide(self, label: EventLabel, peak_score: float, audio_16k: FloatArray) -> GuardDecision:
        digest = hashlib.blake2b(np.ascontiguousarray(audio_16k).tobytes(), digest_size=16)
        key = (label, peak_score, audio_16k.size, digest.digest())
        decision = self._decisions.get(key)
        if decision is None:
            self.calls += 1
            decision = super().decide(label, peak_score, audio_16k)
            self._decisions[key] = decision
        return decision


def with_threshold(events: EventSettings, label: EventLabel, threshold: float) -> EventSettings:
    """``events`` with ``label``'s threshold set (every other setting as configured)."""
    return events.model_copy(update={"thresholds": {**events.thresholds, label: threshold}})


@dataclass
class ReplayStats:
    replays: int = 0  # detect_offline runs on stored rows


def replay(
    clip: ScoredClip,
    replayer: ReplayClassifier,
    events: EventSettings,
    privacy: PrivacySettings,
    guard: SpeechGuard,
) -> list[DetectedEvent]:
    """``detect_offline`` on the clip with the stored rows (one label's, see the class)."""
    replayer.rewind()
    found = detect_offline(clip.signal, replayer.sample_rate, replayer, events, privacy, guard)
    if not replayer.exhausted:
        raise ReplayError("detect_offline scored fewer windows than were stored")
    return found


def label_event_counts(
    clip: ScoredClip,
    classifier: Classifier,
    label: EventLabel,
    grid: Sequence[float],
    events: EventSettings,
    privacy: PrivacySettings,
    guard: SpeechGuard,
    stats: ReplayStats | None = None,
) -> list[int]:
    """Events of ``label`` (alone) on the clip at each threshold of ``grid``."""
    counts = [0] * len(grid)
    if len(clip.rows) == 0:
        return counts
    top = float(clip.rows[:, EVENT_LABELS.index(label)].max())
    reachable = [i for i, t in enumerate(grid) if t <= top]
    if not reachable:
        return counts
    replayer = ReplayClassifier(classifier, clip.rows, label)
    for i in reachable:
        found = replay(clip, replayer, with_threshold(events, label, grid[i]), privacy, guard)
        if stats is not None:
            stats.replays += 1
        counts[i] = sum(1 for event in found if event.label == label)
    return counts


def label_fires(
    clip: ScoredClip,
    classifier: Classifier,
    label: EventLabel,
    threshold: float,
    events: EventSettings,
    privacy: PrivacySettings,
    guard: SpeechGuard,
) -> bool:
    """Whether ``label`` (alone) raises an event on the clip at ``threshold``."""
    return label_event_counts(clip, classifier, label, [threshold], events, privacy, guard)[0] > 0
