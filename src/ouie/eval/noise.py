"""Speech mixed with street noise or an event sound, at 16 kHz, for the speech measurements.

``ouie eval privacy`` (``ouie.compliance.leakage``) builds its speech-in-noise and
speech-with-event recordings with these, and ``ouie eval tune`` (``ouie.eval.tune``) mixes
speech the same way to set its privacy floor, so that the floor is measured on the very
mixtures the privacy report counts. They live in eval, below compliance, so that tuning does
not depend on the compliance tooling.

The generated noise is deliberately simpler than ``ouie.eval.backgrounds.traffic_noise``
(which builds DCASE-style mixture backgrounds): changing it would change every published
privacy figure.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

#: The rate of every recording of the speech measurements (the node's analysis rate).
RATE = 16000


def _rms(audio: FloatArray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


def _fit(audio: FloatArray, length: int) -> FloatArray:
    """``audio`` repeated or cut to ``length`` samples (silence when it is empty)."""
    if audio.size == 0:
        return np.zeros(length, dtype=np.float32)
    reps = int(np.ceil(length / audio.size))
    return np.tile(audio, reps)[:length]


def street_noise(length: int, rng: np.random.Generator) -> FloatArray:
    """Traffic-like noise: brown-ish (low-frequency heavy) with slow level swells."""
    white = rng.standard_normal(length)
    brown = np.cumsum(white)
    brown -= np.convolve(brown, np.ones(801) / 801, mode="same")  # remove the drift
    swell = 0.6 + 0.4 * np.sin(np.linspace(0, 2 * np.pi * length / RATE / 7.0, length))
    noise = brown * swell + 0.3 * white
    return np.asarray(noise / (np.max(np.abs(noise)) + 1e-9) * 0.3, dtype=np.float32)


def mix(speech: FloatArray, other: FloatArray, ratio_db: float) -> FloatArray:
    """``speech`` plus ``other`` scaled so that speech is ``ratio_db`` above it (RMS)."""
    other = _fit(other, speech.size)
    gain = _rms(speech) / max(_rms(other), 1e-9) / (10 ** (ratio_db / 20))
    out = speech + other * gain
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    return np.asarray(out / peak * 0.9 if peak > 0.99 else out, dtype=np.float32)


def overlay(speech: FloatArray, event: FloatArray, event_peak: float = 0.8) -> FloatArray:
    """The event sound laid over the middle of the speech, at ``event_peak`` amplitude."""
    event = event[: speech.size]
    peak = float(np.max(np.abs(event))) if event.size else 0.0
    if peak <= 0:
        return speech
    start = (speech.size - event.size) // 2
    out = speech.copy()
    out[start : start + event.size] += event / peak * event_peak
    top = float(np.max(np.abs(out)))
    return np.asarray(out / top * 0.95 if top > 0.99 else out, dtype=np.float32)
