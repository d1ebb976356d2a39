"""Running the node's pipeline for evaluation: offline (batched) and streaming (real path).

Offline uses ``detect_offline``, which scores every window in batches; a thin wrapper
around the classifier keeps the rows it returned, so the score timeline for the
threshold-free metrics and the plots costs no second pass. Streaming pushes 0.1 s chunks
through ``DetectionPipeline.push`` exactly as a sensor does, for latency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from ouie.config.node import EventSettings, PrivacySettings
from ouie.core.labels import EVENT_LABELS
from ouie.eval.metrics import ScoreTimeline, timeline_from_windows
from ouie.node.classifiers.base import Classifier, ClassifierWrapper
from ouie.node.pipeline import (
    DetectedEvent,
    DetectionPipeline,
    detect_offline,
    score_timeline,
    window_starts,
)
from ouie.privacy.speech_guard import SpeechGuard

FloatArray = npt.NDArray[np.float32]
STREAM_CHUNK_S = 0.1


class RecordingClassifier(ClassifierWrapper):
    """A classifier that remembers the score rows it returned since the last ``take``."""

    def __init__(self, inner: Classifier) -> None:
        super().__init__(inner)
        self._rows: list[FloatArray] = []

    def scores(self, frames: FloatArray) -> FloatArray:
        result = self.inner.scores(frames)
        self._rows.append(np.asarray(result, dtype=np.float32))
        return result

    def take(self) -> FloatArray:
        rows = (
            np.concatenate(self._rows)
            if self._rows
            else np.zeros((0, len(EVENT_LABELS)), dtype=np.float32)
        )
        self._rows = []
        return rows


def resampled_length(n_samples: int, rate: int, target: int) -> int:
    """Length of ``to_rate`` output (scipy ``resample_poly``: ceil(n × up / down))."""
    if rate == target or n_samples == 0:
        return n_samples
    ratio = Fraction(target, rate).limit_denominator(1000)
    return -(-n_samples * ratio.numerator // ratio.denominator)


@dataclass(frozen=True)
class OfflineResult:
    events: list[DetectedEvent]
    timeline: ScoreTimeline
    wall_s: float


class OfflineDetector:
    """``detect_offline`` with the score timeline kept and the wall time measured."""

    def __init__(
        self,
        classifier: Classifier,
        events: EventSettings,
        privacy: PrivacySettings,
        guard: SpeechGuard,
    ) -> None:
        self.classifier = classifier
        self.recorder = RecordingClassifier(classifier)
        self.events = events
        self.privacy = privacy
        self.guard = guard

    def run(self, audio: FloatArray, rate: int) -> OfflineResult:
        self.recorder.take()
        start = time.perf_counter()
        found = detect_offline(audio, rate, self.recorder, self.events, self.privacy, self.guard)
        wall = time.perf_counter() - start
        rows = self.recorder.take()
        c = self.classifier
        n = resampled_length(audio.shape[0], rate, c.sample_rate)
        starts = window_starts(n, c.window_samples, c.hop_samples)
        if len(starts) == len(rows):
            times = np.asarray(starts, dtype=np.float64) / c.sample_rate
        else:  # the pipeline scored differently than expected: score again, plainly
            times, rows = score_timeline(audio, rate, c)
        timeline = timeline_from_windows(
            times, rows, c.window_samples / c.sample_rate, audio.shape[0] / rate
        )
        return OfflineResult(found, timeline, wall)


def stream_events(
    audio: FloatArray,
    rate: int,
    classifier: Classifier,
    events: EventSettings,
    privacy: PrivacySettings,
    guard: SpeechGuard,
    chunk_s: float = STREAM_CHUNK_S,
) -> list[DetectedEvent]:
    """Events as a sensor emits them: ``DetectionPipeline.push`` in ``chunk_s`` chunks."""
    pipeline = DetectionPipeline(classifier, events, privacy, input_rate=rate, guard=guard)
    step = max(1, round(chunk_s * rate))
    found: list[DetectedEvent] = []
    for start in range(0, audio.shape[0], step):
        found.extend(pipeline.push(audio[start : start + step]))
    found.extend(pipeline.flush())
    return found


def with_activity_offsets(
    found: list[DetectedEvent], timeline: ScoreTimeline, settings: EventSettings
) -> list[DetectedEvent]:
    """Events are emitted at confirmation, so their ``offset_s`` is where the evidence was
    complete, not where the sound ended. For segment-based metrics, extend each event over
    the following frames whose score stays at or above ``threshold × hysteresis`` (the event
    stage's own end rule)."""
    extended: list[DetectedEvent] = []
    bounds = timeline.boundaries_s
    n = len(timeline.scores)
    for event in found:
        column = EVENT_LABELS.index(event.label)
        keep = settings.threshold(event.label) * settings.hysteresis
        frame = min(max(int(np.searchsorted(bounds, event.onset_s, side="right")) - 1, 0), n - 1)
        confirm = min(max(int(np.searchsorted(bounds, event.offset_s, side="right")) - 1, 0), n - 1)
        while frame <= confirm and timeline.scores[frame, column] < keep:
            frame += 1  # the score may rise a frame or two after the refined onset
        if frame > confirm:
            extended.append(event)
            continue
        last = frame
        while last + 1 < n and timeline.scores[last + 1, column] >= keep:
            last += 1
        end = float(bounds[last + 1])
        extended.append(replace(event, offset_s=max(event.offset_s, end)))
    return extended
