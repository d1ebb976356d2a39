"""The detection pipeline shared by ``ouie detect``, ``ouie node``, the twin and ``ouie eval``.

Streaming (``DetectionPipeline.push``) and offline (``detect_offline``) use the same
resampler, window grid, event stage, onset refinement and speech guard, so an evaluation
measures exactly what a sensor does; offline only batches the classifier calls.
Audio exists here only inside the bounded ring buffer and local variables.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ouie.config.node import EventSettings, OnsetSettings, PrivacySettings
from ouie.core.labels import IMPULSIVE_LABELS, EventLabel
from ouie.node.audio_io import mix_down, to_rate
from ouie.node.classifiers.base import Classifier
from ouie.node.dropout import has_cutoff
from ouie.node.events import Confirmation, EventStage, ScoreFrame
from ouie.node.impulses import ImpulseLog
from ouie.node.onset import FLOOR_DB, peak_level_dbfs, refine_onset
from ouie.node.resample import StreamResampler
from ouie.node.ring_buffer import RingBuffer
from ouie.node.tuned import with_tuned_defaults
from ouie.privacy.speech_guard import VAD_RATE, SpeechGuard

FloatArray = npt.NDArray[np.float32]
CLIP_LEVEL = 0.999
ONSET_LOOKBACK_S = 0.1  # the loudest moment is looked for from a little before the window
#: and, for an impulsive class, the rise that leads to it up to this far before the window: a
#: bang's first window may score under the threshold (ouie.node.onset). A sustained sound (a
#: siren coming closer) rises slowly; walking back that far would only make its onset vaguer.
ONSET_RISE_LOOKBACK_S = 1.0
GUARD_BEFORE_S = 0.5
GUARD_AFTER_S = 0.6
#: How long after its onset the guard listens to a weak candidate (below the strict score),
#: instead of ``GUARD_AFTER_S``: long enough to hear whether someone starts talking. A
#: breath or lip click just before a word, or a word's first instant cut off by a window's
#: end, reads as a faint impulse, and silero needs a few hundred milliseconds of the word
#: to call it speech (docs/privacy.md).
WEAK_GUARD_AFTER_S = 1.4
#: A capture gap's silence, as the resampler's filter smears it: a candidate whose windows
#: come this close to a gap is heard on missing audio (``DetectionPipeline.mark_dropped``).
DROPOUT_MARGIN_S = 0.05


@dataclass(frozen=True)
class DetectedEvent:
    label: EventLabel
    onset_s: float
    offset_s: float
    peak_score: float
    level_dbfs: float
    speech_present: bool
    emitted_at_s: float


@dataclass
class PipelineStats:
    samples_in: int = 0
    invalid_samples: int = 0
    clipped_samples: int = 0
    dropped_chunks: int = 0
    dropped_samples: int = 0
    speech_suppressions: int = 0
    cutoff_suppressions: int = 0  # candidates made by sound stopping dead (ouie.node.dropout)
    dropout_suppressions: int = 0  # candidates whose windows hold a capture gap (mark_dropped)
    events_emitted: int = 0
    windows_scored: int = 0
    level_sum_db: float = 0.0
    level_chunks: int = 0
    level_max_dbfs: float = FLOOR_DB

    @property
    def level_mean_dbfs(self) -> float:
        return self.level_sum_db / self.level_chunks if self.level_chunks else FLOOR_DB

    @property
    def clipped_fraction(self) -> float:
        return self.clipped_samples / self.samples_in if self.samples_in else 0.0


AudioSpan = Callable[[int, int], FloatArray]


@dataclass(frozen=True)
class _Pending:
    """A confirmed label waiting for enough audio after its onset for the speech guard."""

    confirmation: Confirmation
    onset_sample: int
    guard_end_sample: int


class _EventBuilder:
    """Turns confirmations into events: onset, level, and the speech guard's decision.

    The speech guard hears from ``GUARD_BEFORE_S`` before the onset to ``GUARD_AFTER_S``
    after it (or to the end of the confirming window if later). Speech that has only just
    started is otherwise too short for the VAD to recognise, and a scream-like word at the
    start of a sentence would pass. Waiting for that audio costs at most ``GUARD_AFTER_S``
    of latency, and usually nothing: the confirming window often already reaches that far.
    A candidate below the strict score, which any speech heard near it stops, is heard to
    ``WEAK_GUARD_AFTER_S`` after its onset.
    """

    def __init__(self, sample_rate: int, guard: SpeechGuard, stats: PipelineStats) -> None:
        self.sample_rate = sample_rate
        self.guard = guard
        self.stats = stats

    def pending(self, confirmation: Confirmation, audio_span: AudioSpan) -> _Pending:
        first, last = confirmation.first_frame, confirmation.confirm_frame
        peak_start = max(0, first.start_sample - round(ONSET_LOOKBACK_S * self.sample_rate))
        impulsive = confirmation.label in IMPULSIVE_LABELS
        lookback = ONSET_RISE_LOOKBACK_S if impulsive else ONSET_LOOKBACK_S
        rise_start = max(0, first.start_sample - round(lookback * self.sample_rate))
        audio = audio_span(rise_start, first.end_sample)
        rise_start = first.end_sample - audio.size  # the ring may hold less than asked
        peak_from = max(0, peak_start - rise_start)
        onset = rise_start + refine_onset(audio, self.sample_rate, peak_from=peak_from)
        weak = confirmation.peak_score < self.guard.settings.impulsive_threshold
        after = WEAK_GUARD_AFTER_S if weak else GUARD_AFTER_S
        guard_end = max(last.end_sample, onset + round(after * self.sample_rate))
        return _Pending(confirmation, onset, guard_end)

    def build(
        self, pending: _Pending, audio_span: AudioSpan, emitted_at_s: float
    ) -> DetectedEvent | None:
        confirmation = pending.confirmation
        last = confirmation.confirm_frame
        if has_cutoff(audio_span(pending.onset_sample, last.end_sample), self.sample_rate):
            self.stats.cutoff_suppressions += 1
            return None
        guard_start = max(0, pending.onset_sample - round(GUARD_BEFORE_S * self.sample_rate))
        speech_audio = audio_span(guard_start, pending.guard_end_sample)
        if self.sample_rate != VAD_RATE:
            speech_audio = to_rate(speech_audio, self.sample_rate, VAD_RATE)
        decision = self.guard.decide(confirmation.label, confirmation.peak_score, speech_audio)
        if not decision.allowed:
            self.stats.speech_suppressions += 1
            return None
        level_audio = audio_span(
            pending.onset_sample, max(last.end_sample, pending.onset_sample + 1)
        )
        self.stats.events_emitted += 1
        return DetectedEvent(
            label=confirmation.label,
            onset_s=pending.onset_sample / self.sample_rate,
            offset_s=last.end_sample / self.sample_rate,
            peak_score=round(confirmation.peak_score, 4),
            level_dbfs=round(peak_level_dbfs(level_audio, self.sample_rate), 2),
            speech_present=decision.speech_present,
            emitted_at_s=emitted_at_s,
        )


def _sanitise(chunk: FloatArray, stats: PipelineStats) -> FloatArray:
    mono = mix_down(chunk)
    finite = np.isfinite(mono)
    if not finite.all():
        stats.invalid_samples += int(mono.size - finite.sum())
        mono = np.where(finite, mono, np.float32(0.0)).astype(np.float32)
    stats.samples_in += mono.size
    stats.clipped_samples += int(np.count_nonzero(np.abs(mono) >= CLIP_LEVEL))
    if mono.size:
        power = float(np.mean(np.square(mono, dtype=np.float64)))
        level = max(FLOOR_DB, 10.0 * math.log10(power)) if power > 0 else FLOOR_DB
        stats.level_sum_db += level
        stats.level_chunks += 1
        stats.level_max_dbfs = max(stats.level_max_dbfs, level)
    return np.clip(mono, -1.0, 1.0)


class DetectionPipeline:
    """Streaming detection: push chunks of any size, get events as soon as they are confirmed."""

    def __init__(
        self,
        classifier: Classifier,
        events: EventSettings,
        privacy: PrivacySettings,
        input_rate: int,
        ring_buffer_s: float = 4.0,
        guard: SpeechGuard | None = None,
        onsets: OnsetSettings | None = None,
    ) -> None:
        self.classifier = classifier
        self.input_rate = input_rate
        self.rate = classifier.sample_rate
        self.window = classifier.window_samples
        self.hop = classifier.hop_samples
        self.stats = PipelineStats()
        self.stage = EventStage(with_tuned_defaults(events, classifier.model_id), self.rate)
        self.resampler = StreamResampler(input_rate, self.rate)
        capacity = max(round(ring_buffer_s * self.rate), 2 * self.window)
        self.ring = RingBuffer(capacity)
        self.builder = _EventBuilder(self.rate, guard or SpeechGuard(privacy), self.stats)
        self._next_window = 0  # start sample (model rate) of the next window to score
        self._pending: list[_Pending] = []
        self._finished = False
        # Capture gaps filled with silence, as [start, end) samples at the model's rate.
        self._dropouts: list[tuple[int, int]] = []
        self._dropout_margin = round(DROPOUT_MARGIN_S * self.rate)
        # impulse onsets for the hub's requests (a sensor's, not ``ouie detect``'s)
        self.impulses: ImpulseLog | None = None
        if onsets is not None and onsets.answer_requests:
            self.impulses = ImpulseLog(self.rate, onsets.min_prominence_db, onsets.keep_s)

    def update_events(self, events: EventSettings) -> None:
        self.stage.update_settings(with_tuned_defaults(events, self.classifier.model_id))

    @property
    def stream_time_s(self) -> float:
        return (self.stats.samples_in + self.stats.dropped_samples) / self.input_rate

    def mark_dropped(self, n_samples: int) -> None:
        """Capture lost ``n_samples``: fill with silence so the sample clock stays true.

        Both edges of the gap are steps no microphone hears: sound stopping dead, and sound
        resuming at full level out of digital silence (the cascade once heard the second as a
        crash; docs/privacy.md). ``has_cutoff`` recognises the first in any audio; here the
        pipeline knows where the gap is, so a candidate whose windows touch it is dropped.
        """
        self.stats.dropped_chunks += 1
        self.stats.dropped_samples += n_samples
        start = self.ring.total
        # a gap that has left the ring is behind every window still to be confirmed
        self._dropouts = [
            g for g in self._dropouts if g[1] + self._dropout_margin > self.ring.oldest
        ]
        end = start + round(n_samples * self.rate / self.input_rate)
        self._dropouts.append((start, end))
        if self.impulses is not None:
            self.impulses.mark_gap(start / self.rate, end / self.rate)
        self._consume(self.resampler.push(np.zeros(n_samples, dtype=np.float32)))

    def _on_dropout(self, confirmation: Confirmation) -> bool:
        """Whether the candidate's windows (first to confirming) come near a capture gap."""
        margin = self._dropout_margin
        first, last = confirmation.first_frame.start_sample, confirmation.confirm_frame.end_sample
        return any(start - margin < last and end + margin > first for start, end in self._dropouts)

    def push(self, chunk: FloatArray) -> list[DetectedEvent]:
        if self._finished:
            raise RuntimeError("pipeline already flushed")
        mono = _sanitise(np.asarray(chunk, dtype=np.float32), self.stats)
        return self._consume(self.resampler.push(mono))

    def flush(self) -> list[DetectedEvent]:
        """End of stream: score the tail the way ``detect_offline`` does."""
        events = self._consume(self.resampler.flush())
        self._finished = True
        total = self.ring.total
        for start in _tail_window_starts(total, self.window, self._next_window, self.hop):
            events.extend(self._score([start]))
        events.extend(self._resolve(final=True))
        return events

    def _consume(self, resampled: FloatArray) -> list[DetectedEvent]:
        self.ring.extend(resampled)
        if self.impulses is not None:
            self.impulses.push(resampled)
        starts: list[int] = []
        while self._next_window + self.window <= self.ring.total:
            starts.append(self._next_window)
            self._next_window += self.hop
        events = self._score(starts) if starts else []
        events.extend(self._resolve(final=False))
        return events

    def _resolve(self, final: bool) -> list[DetectedEvent]:
        """Build the pending events whose guard audio has arrived (all of them at the end)."""
        ready = [p for p in self._pending if final or p.guard_end_sample <= self.ring.total]
        self._pending = [p for p in self._pending if p not in ready]
        built = (self.builder.build(p, self._span, self.stream_time_s) for p in ready)
        return [event for event in built if event is not None]

    def _span(self, start: int, end: int) -> FloatArray:
        return self.ring.span(start, end)

    def _score(self, starts: list[int]) -> list[DetectedEvent]:
        windows = np.stack([_padded(self._span(s, s + self.window), self.window) for s in starts])
        scores = self.classifier.scores(windows)
        self.stats.windows_scored += len(starts)
        for start, row in zip(starts, scores, strict=True):
            frame = ScoreFrame(start, start + self.window, row)
            for confirmation in self.stage.push(frame):
                if self._on_dropout(confirmation):
                    self.stats.dropout_suppressions += 1
                    continue
                self._pending.append(self.builder.pending(confirmation, self._span))
        return []


def _padded(audio: FloatArray, length: int) -> FloatArray:
    if audio.size >= length:
        return audio[:length]
    return np.concatenate([audio, np.zeros(length - audio.size, dtype=np.float32)])


def window_starts(total: int, window: int, hop: int) -> list[int]:
    """Start samples of every window scored over a stream of ``total`` samples."""
    full = list(range(0, total - window + 1, hop)) if total >= window else []
    next_start = full[-1] + hop if full else 0
    return full + _tail_window_starts(total, window, next_start, hop)


def _tail_window_starts(total: int, window: int, next_start: int, hop: int) -> list[int]:
    """At the end of a stream: one more window so the last samples are heard too.

    A stream shorter than one window is scored once, zero-padded; otherwise a final window
    ends at the last sample when more than half a hop of audio was never scored.
    """
    if total == 0:
        return []
    if total < window:
        return [0] if next_start == 0 else []
    unscored = total - (next_start - hop + window)
    if unscored > hop // 2:
        return [total - window]
    return []


def score_timeline(
    audio: FloatArray, sample_rate: int, classifier: Classifier, batch: int = 64
) -> tuple[npt.NDArray[np.float64], FloatArray]:
    """(window start times in s, scores [n, 8]) over a whole recording, batched."""
    signal = to_rate(np.clip(mix_down(audio), -1.0, 1.0), sample_rate, classifier.sample_rate)
    starts = window_starts(signal.size, classifier.window_samples, classifier.hop_samples)
    rows: list[FloatArray] = []
    for i in range(0, len(starts), batch):
        chunk = starts[i : i + batch]
        windows = np.stack(
            [
                _padded(signal[s : s + classifier.window_samples], classifier.window_samples)
                for s in chunk
            ]
        )
        rows.append(classifier.scores(windows))
    scores = np.concatenate(rows) if rows else np.zeros((0, 8), dtype=np.float32)
    times = np.asarray(starts, dtype=np.float64) / classifier.sample_rate
    return times, scores


def detect_offline(
    audio: FloatArray,
    sample_rate: int,
    classifier: Classifier,
    events: EventSettings,
    privacy: PrivacySettings,
    guard: SpeechGuard | None = None,
) -> list[DetectedEvent]:
    """Events of a whole recording: the streaming logic with batched classifier calls."""
    signal = to_rate(
        np.clip(mix_down(np.nan_to_num(audio)), -1.0, 1.0), sample_rate, classifier.sample_rate
    )
    rate = classifier.sample_rate
    stats = PipelineStats()
    stage = EventStage(with_tuned_defaults(events, classifier.model_id), rate)
    builder = _EventBuilder(rate, guard or SpeechGuard(privacy), stats)
    times, scores = score_timeline(signal, rate, classifier)

    def span(start: int, end: int) -> FloatArray:
        return signal[max(0, start) : max(0, end)]

    found: list[DetectedEvent] = []
    for start_s, row in zip(times, scores, strict=True):
        start = round(float(start_s) * rate)
        frame = ScoreFrame(start, start + classifier.window_samples, row)
        for confirmation in stage.push(frame):
            pending = builder.pending(confirmation, span)
            # Emitted once the guard's audio exists: at the end of the recording at the latest.
            emitted = min(pending.guard_end_sample, signal.size) / rate
            event = builder.build(pending, span, emitted)
            if event is not None:
                found.append(event)
    return found
