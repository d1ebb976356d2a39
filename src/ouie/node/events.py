"""From per-window scores to events: smoothing, thresholds, hysteresis, duration, merging.

One ``LabelTrack`` per label follows the smoothed score of its column. An event is
*confirmed* once the score has stayed at or above the label's threshold for
``min_duration_s``; it is emitted at that moment (low latency: the control room should not
wait for a siren to end) and the track stays *active* until the score falls below
``threshold × hysteresis``. A new activation within ``merge_gap_s`` of the previous one's
end counts as the same event and emits nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ouie.config.node import EventSettings
from ouie.core.labels import EVENT_LABELS, EventLabel


@dataclass(frozen=True)
class ScoreFrame:
    """Scores of one analysis window; samples are at the classifier's rate."""

    start_sample: int
    end_sample: int
    scores: npt.NDArray[np.float32]  # [8]

    @property
    def centre_sample(self) -> int:
        return (self.start_sample + self.end_sample) // 2


@dataclass(frozen=True)
class Confirmation:
    """A label activation ready to become an event (before the privacy guard)."""

    label: EventLabel
    first_frame: ScoreFrame  # the window where the score first crossed the threshold
    confirm_frame: ScoreFrame
    peak_score: float


@dataclass
class LabelTrack:
    label: EventLabel
    active: bool = False
    candidate: list[ScoreFrame] = field(default_factory=list)
    candidate_peak: float = 0.0
    last_active_centre: int | None = None  # centre of the last window still above threshold


class EventStage:
    def __init__(self, settings: EventSettings, sample_rate: int) -> None:
        self.settings = settings
        self.sample_rate = sample_rate
        self.tracks = [LabelTrack(label) for label in EVENT_LABELS]
        self._recent: deque[npt.NDArray[np.float32]] = deque(maxlen=settings.median_frames)

    def update_settings(self, settings: EventSettings) -> None:
        """New thresholds (e.g. pushed by the hub) take effect from the next window."""
        if settings.median_frames != self.settings.median_frames:
            self._recent = deque(self._recent, maxlen=settings.median_frames)
        self.settings = settings

    def _smoothed(self, scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        self._recent.append(scores)
        if len(self._recent) == 1:
            return scores
        return np.asarray(np.median(np.stack(self._recent), axis=0), dtype=np.float32)

    def push(self, frame: ScoreFrame) -> list[Confirmation]:
        smoothed = self._smoothed(frame.scores)
        confirmed: list[Confirmation] = []
        min_samples = self.settings.min_duration_s * self.sample_rate
        gap_samples = self.settings.merge_gap_s * self.sample_rate
        for column, track in enumerate(self.tracks):
            score = float(smoothed[column])
            threshold = self.settings.threshold(track.label)
            if track.active:
                if score < threshold * self.settings.hysteresis:
                    track.active = False
                else:
                    track.last_active_centre = frame.centre_sample
                continue
            if score < threshold:
                track.candidate.clear()
                track.candidate_peak = 0.0
                continue
            track.candidate.append(frame)
            track.candidate_peak = max(track.candidate_peak, score)
            first = track.candidate[0]
            # Duration of evidence: from the first window's centre to this window's centre,
            # plus one hop's worth so that a single window counts as its own length.
            span = frame.end_sample - first.end_sample + (frame.end_sample - frame.start_sample) / 2
            if span < min_samples:
                continue
            track.active = True
            # Gaps are measured between window centres: overlapping windows would otherwise
            # make any two activations look adjacent.
            merged = (
                track.last_active_centre is not None
                and first.centre_sample - track.last_active_centre <= gap_samples
            )
            track.last_active_centre = frame.centre_sample
            if not merged:
                confirmed.append(Confirmation(track.label, first, frame, track.candidate_peak))
            track.candidate = []
            track.candidate_peak = 0.0
        if self.settings.one_label_per_window and len(confirmed) > 1:
            # The losers stay active, so they do not fire a window later for the same sound.
            confirmed = [max(confirmed, key=lambda c: c.peak_score)]
        return confirmed

    def reset_track(self, label: EventLabel) -> None:
        track = self.tracks[EVENT_LABELS.index(label)]
        track.active = False
        track.candidate.clear()
