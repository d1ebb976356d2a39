"""Sound that stops dead into digital silence is a dropout, not an event."""

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
