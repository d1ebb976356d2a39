"""The numpy polyphase resampler against scipy's ``resample_poly``, and streaming == offline."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import firwin, resample_poly

from ouie.node.audio_io import to_rate
from ouie.node.resample import StreamResampler, lowpass_filter, rate_ratio, resample

RATE_PAIRS = [
    (48000, 16000),
    (44100, 16000),
    (32000, 16000),
    (22050, 16000),
    (8000, 16000),
    (16000, 32000),
    (16000, 44100),
]


def _noise(n: int, seed: int = 3) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize(("up", "down"), [(1, 2), (1, 3), (2, 1), (160, 441), (320, 441)])
def test_lowpass_filter_is_scipys_firwin(up: int, down: int) -> None:
    max_rate = max(up, down)
    expected = firwin(20 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    np.testing.assert_allclose(lowpass_filter(up, down), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("rate", "target"), RATE_PAIRS)
def test_resample_matches_scipy_resample_poly(rate: int, target: int) -> None:
    audio = _noise(rate // 2 + 7)  # half a second and an odd tail
    up, down = rate_ratio(rate, target)
    expected = resample_poly(audio, up, down)
    ours = resample(audio, rate, target)
    assert ours.dtype == np.float32
    assert ours.shape == expected.shape
    assert np.max(np.abs(ours - expected)) < 1e-5


@pytest.mark.parametrize("length", [1, 2, 3, 7, 50])
def test_short_signals_match_scipy(length: int) -> None:
    audio = _noise(length)
    for rate, target in RATE_PAIRS:
        up, down = rate_ratio(rate, target)
        expected = resample_poly(audio, up, down)
        ours = resample(audio, rate, target)
        assert ours.shape == expected.shape
        assert np.max(np.abs(ours - expected), initial=0.0) < 1e-5


@pytest.mark.parametrize(("rate", "target"), [*RATE_PAIRS, (16000, 16000)])
def test_streaming_is_bit_identical_to_offline(rate: int, target: int) -> None:
    audio = _noise(2 * rate + 11, seed=5)
    rng = np.random.default_rng(rate)
    stream = StreamResampler(rate, target)
    parts, position = [], 0
    while position < audio.size:
        size = int(rng.choice([0, 1, 5, 160, 1601, rate // 10, rate // 3]))
        parts.append(stream.push(audio[position : position + size]))
        position += size
    parts.append(stream.flush())
    streamed = np.concatenate(parts)
    np.testing.assert_array_equal(streamed, to_rate(audio, rate, target))


def test_streaming_delay_is_below_a_millisecond() -> None:
    stream = StreamResampler(32000, 16000)
    out = stream.push(_noise(3200))  # 100 ms in
    assert 1600 - out.size <= 16  # at most 1 ms of output held back


def test_to_rate_is_the_numpy_resampler() -> None:
    audio = _noise(44100)
    np.testing.assert_array_equal(to_rate(audio, 44100, 16000), resample(audio, 44100, 16000))
    assert to_rate(audio[:0], 44100, 16000).size == 0
