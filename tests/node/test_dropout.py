"""Sound that stops dead into digital silence, or resumes out of a capture gap, is not an event."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ouie.config.node import EventSettings, PrivacySettings
from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.node.dropout import has_cutoff
from ouie.node.pipeline import DetectionPipeline, detect_offline

RATE = 16000


def _noise(seconds: float, level: float = 0.05, seed: int = 0) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(round(seconds * RATE)) * level).astype(np.float32)


def test_sound_stopping_into_zeros_is_a_cutoff() -> None:
    audio = np.concatenate([_noise(0.5), np.zeros(RATE // 2, np.float32)])
    assert has_cutoff(audio, RATE)


def test_zeros_then_sound_is_not_a_cutoff() -> None:
    audio = np.concatenate([np.zeros(RATE // 2, np.float32), _noise(0.5)])
    assert not has_cutoff(audio, RATE)


def test_short_zero_runs_and_quiet_16_bit_audio_are_not_cutoffs() -> None:
    gap = np.concatenate([_noise(0.3), np.zeros(round(0.01 * RATE), np.float32), _noise(0.3)])
    assert not has_cutoff(gap, RATE)  # 10 ms of zeros: shorter than a dropout
    quiet = np.round(_noise(1.0, level=2.0 / 32768) * 32768) / 32768  # many exact zeros
    assert np.count_nonzero(quiet == 0.0) > 1000
    assert not has_cutoff(quiet.astype(np.float32), RATE)
    fade = np.concatenate([_noise(0.3, level=1e-5), np.zeros(RATE // 4, np.float32)])
    assert not has_cutoff(fade, RATE)  # a -100 dBFS tail ending in zeros: no sound stopped


class _CutoffHearingClassifier:
    """Hears breaking glass in any window where sound stops dead, like ouie-compact did."""

    model_id = "test-cutoff@1"
    sample_rate = RATE
    window_samples = 15600
    hop_samples = 4000

    def scores(self, frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = np.full((len(frames), len(EVENT_LABELS)), 0.01, np.float32)
        for i, frame in enumerate(frames):
            if has_cutoff(frame, RATE):
                out[i, EVENT_LABELS.index(EventLabel.GLASS_BREAKING)] = 0.95
        return out


def test_cutoff_candidates_are_suppressed_and_counted() -> None:
    # two recordings played back to back with a silent gap, as `ouie eval privacy` feeds them
    audio = np.concatenate(
        [_noise(3.0), np.zeros(RATE, np.float32), _noise(3.0, seed=1), np.zeros(RATE, np.float32)]
    )
    pipeline = DetectionPipeline(
        _CutoffHearingClassifier(), EventSettings(), PrivacySettings(), RATE
    )
    events = []
    for i in range(0, audio.size, 1600):
        events.extend(pipeline.push(audio[i : i + 1600]))
    events.extend(pipeline.flush())
    assert events == []
    assert pipeline.stats.cutoff_suppressions == 2
    offline = detect_offline(
        audio, RATE, _CutoffHearingClassifier(), EventSettings(), PrivacySettings()
    )
    assert offline == []


class _ResumeHearingClassifier(_CutoffHearingClassifier):
    """Hears a crash wherever sound resumes at full level out of digital silence (as the
    cascade once did), and a gunshot wherever a sample reaches 0.8 (a real bang)."""

    model_id = "test-resume@1"

    def scores(self, frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = np.full((len(frames), len(EVENT_LABELS)), 0.01, np.float32)
        run = round(0.02 * RATE)
        for i, frame in enumerate(frames):
            zero = np.flatnonzero(frame == 0.0)
            if zero.size >= run and zero[-1] + 1 < frame.size and zero[-1] - zero[0] >= run:
                out[i, EVENT_LABELS.index(EventLabel.VEHICLE_CRASH)] = 0.95
            if np.abs(frame).max() >= 0.8:
                out[i, EVENT_LABELS.index(EventLabel.GUNSHOT)] = 0.95
        return out


def test_sound_resuming_after_a_capture_gap_is_not_an_event() -> None:
    traffic, resumed = _noise(3.0), _noise(6.0, seed=1)
    resumed[round(4.0 * RATE)] = 0.9  # a real bang 4 s after the capture came back
    gap = round(2.0 * RATE)

    def run(mark_gap: bool) -> tuple[list[EventLabel], DetectionPipeline]:
        pipeline = DetectionPipeline(
            _ResumeHearingClassifier(), EventSettings(), PrivacySettings(), RATE
        )
        events = []
        for i in range(0, traffic.size, 1600):
            events.extend(pipeline.push(traffic[i : i + 1600]))
        if mark_gap:  # the device reported an overflow: the node fills the gap itself
            pipeline.mark_dropped(gap)
        else:  # the same silence, arriving as samples
            events.extend(pipeline.push(np.zeros(gap, np.float32)))
        for i in range(0, resumed.size, 1600):
            events.extend(pipeline.push(resumed[i : i + 1600]))
        events.extend(pipeline.flush())
        return [event.label for event in events], pipeline

    unmarked, _ = run(mark_gap=False)
    assert EventLabel.VEHICLE_CRASH in unmarked  # what the gap's second edge looks like
    labels, pipeline = run(mark_gap=True)
    assert labels == [EventLabel.GUNSHOT]  # the bang after the gap is still reported
    assert pipeline.stats.dropout_suppressions >= 1
    assert pipeline.stats.dropped_samples == gap
