from __future__ import annotations

import numpy as np
import pytest

from ouie.eval.extent import clip_segments, energetic_segments

RATE = 16000


def _quiet(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.001 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


def _burst(audio: np.ndarray, at_s: float, length_s: float, amplitude: float = 0.5) -> None:
    rng = np.random.default_rng(1)
    n = int(length_s * RATE)
    start = int(at_s * RATE)
    audio[start : start + n] += (amplitude * rng.standard_normal(n)).astype(np.float32)


def test_burst_extent_within_frame_resolution() -> None:
    audio = _quiet(2.0)
    _burst(audio, 0.73, 0.12)
    (segment,) = energetic_segments(audio, RATE)
    assert segment.onset_s == pytest.approx(0.73, abs=0.003)
    assert segment.offset_s == pytest.approx(0.85, abs=0.021)


def test_separate_and_merged_bursts() -> None:
    audio = _quiet(5.0)
    _burst(audio, 0.5, 0.1)
    _burst(audio, 0.9, 0.1)  # 0.3 s later: one event (node merge gap is 1 s)
    _burst(audio, 3.5, 0.1)  # 2.5 s later: a second event
    segments = energetic_segments(audio, RATE)
    assert len(segments) == 2
    assert segments[0].onset_s == pytest.approx(0.5, abs=0.003)
    assert segments[0].offset_s == pytest.approx(1.0, abs=0.021)
    assert segments[1].onset_s == pytest.approx(3.5, abs=0.003)


def test_stationary_clip_is_active_throughout() -> None:
    t = np.arange(2 * RATE) / RATE
    siren = (0.3 * np.sin(2 * np.pi * (700 + 300 * np.sin(2 * np.pi * 0.5 * t)) * t)).astype(
        np.float32
    )
    (segment,) = energetic_segments(siren, RATE)
    assert (segment.onset_s, segment.offset_s) == (0.0, pytest.approx(2.0))


def test_annotated_times_win_over_energy() -> None:
    audio = _quiet(3.0)
    _burst(audio, 0.5, 0.1)
    (segment,) = clip_segments(audio, RATE, onset_s=1.0, offset_s=None)
    assert (segment.onset_s, segment.offset_s) == (1.0, pytest.approx(3.0))
    assert energetic_segments(np.zeros(0, np.float32), RATE) == []
