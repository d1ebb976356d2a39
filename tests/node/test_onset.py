"""Onset refinement: the rise to a sound's loudest millisecond, at 1 ms, at every sensor."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, sosfilt

from ouie.node.onset import refine_onset

RATE = 16000
FloatArray = npt.NDArray[np.float32]


def _quiet(seconds: float, rng: np.random.Generator) -> FloatArray:
    return (rng.standard_normal(round(seconds * RATE)) * 1e-3).astype(np.float32)


def _rumble(seconds: float, rng: np.random.Generator, attack_s: float = 0.0) -> FloatArray:
    """A boom's rumble: low-pitched noise (40-300 Hz) rising over ``attack_s``, then
    decaying. Its 1 ms envelope dips deeply between the cycles of its lowest partials."""
    n = round(seconds * RATE)
    sos = butter(2, [40.0, 300.0], btype="bandpass", fs=RATE, output="sos")
    noise = sosfilt(sos, rng.standard_normal(n))
    t = np.arange(n) / RATE
    rise = np.minimum(t / attack_s, 1.0) if attack_s > 0 else np.ones(n)
    shaped = noise * rise * np.exp(-np.maximum(t - attack_s, 0.0) / 0.4)
    return np.asarray(0.5 * shaped / np.max(np.abs(shaped)), dtype=np.float32)


def test_the_rise_is_found_before_a_window_that_begins_after_the_sound() -> None:
    rng = np.random.default_rng(4)
    audio = np.concatenate([_quiet(0.5, rng), _rumble(1.0, rng, attack_s=0.005)])
    # the triggering window (its peak search) begins 0.15 s into the sound
    onset = refine_onset(audio, RATE, peak_from=round(0.65 * RATE))
    assert abs(onset - round(0.5 * RATE)) <= round(0.002 * RATE)


def test_a_second_bang_after_a_silence_keeps_its_own_onset() -> None:
    rng = np.random.default_rng(5)
    first = 0.3 * _rumble(0.05, rng, attack_s=0.002)
    second = _rumble(0.4, rng, attack_s=0.002)
    audio = np.concatenate([_quiet(0.3, rng), first, _quiet(0.15, rng), second])
    onset = refine_onset(audio, RATE)
    assert abs(onset - round(0.5 * RATE)) <= round(0.002 * RATE)  # the louder, later one


def test_nothing_standing_out_keeps_the_window_start() -> None:
    rng = np.random.default_rng(6)
    audio = _quiet(1.0, rng)
    assert refine_onset(audio, RATE, peak_from=4000) == 4000
    assert refine_onset(audio, RATE) == 0
