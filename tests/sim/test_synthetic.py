"""The twin's generated sources have the structure of the sound they stand for."""

from __future__ import annotations

import numpy as np

from ouie.sim.synthetic import scream

RATE = 16000


def _pitch_hz(frame: np.ndarray) -> float:
    """Fundamental of a voiced frame from its autocorrelation (400–1500 Hz searched)."""
    frame = frame - frame.mean()
    corr = np.correlate(frame, frame, mode="full")[frame.size - 1 :]
    low, high = RATE // 1500, RATE // 400
    return RATE / (low + int(np.argmax(corr[low:high])))


def test_a_scream_is_a_high_voice_with_its_energy_in_the_formants() -> None:
    for seed in range(5):
        signal = scream(np.random.default_rng(seed), RATE)
        assert 1.0 <= signal.size / RATE <= 2.0 and np.all(np.isfinite(signal))
        spectrum = np.abs(np.fft.rfft(signal)) ** 2
        freqs = np.fft.rfftfreq(signal.size, 1 / RATE)
        voice_band = spectrum[(freqs >= 400) & (freqs <= 4000)].sum()
        assert voice_band / spectrum.sum() > 0.9  # f0 and the formants F1-F3 of an open vowel
        middle = signal[signal.size // 2 - 1024 : signal.size // 2 + 1024]
        assert 420.0 <= _pitch_hz(middle) <= 1350.0  # f0 500-1000 Hz, arched up by a third
        # voiced, not noise: the waveform repeats at its period
        period = round(RATE / _pitch_hz(middle))
        a, b = middle[:-period], middle[period:]
        assert np.corrcoef(a, b)[0, 1] > 0.3  # white noise: about 0
