"""Onset refinement and level measurement on the audio of a triggering window.

Window-level classifiers know *that* a window holds an event, not *when* it starts. The
hub localises from onset time differences between sensors, so each node refines the onset
from the energy envelope at 1 ms resolution: the onset is the start of the rise that leads
to the loudest millisecond of the window, taken where the envelope first exceeds the
background by a quarter of the peak's dB excess. The same relative rule at every sensor
keeps the bias common, so it cancels in time differences.

The rise may start before the triggering window (``peak_from``): a sound's first window can
score under the threshold (a firework's boom before its crackle), so the pipeline hands over
audio from before it too, for the walk back and for the background. With only the window,
the background of a loud, long sound was read inside the sound itself, the walk back
stopped at a dip between the cycles of its rumble, and a firework's onset came 50-120 ms
late at the sensors nearest to it (the twin's ``saturday-night``: fixes 17-55 m off,
docs/twin.md).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
ENVELOPE_S = 0.001
LEVEL_FRAME_S = 0.05
FLOOR_DB = -200.0


def envelope_db(audio: FloatArray, sample_rate: int, frame_s: float) -> FloatArray:
    step = max(1, round(sample_rate * frame_s))
    n = audio.size // step
    if n == 0:
        return np.full(1, FLOOR_DB, dtype=np.float32)
    power = np.mean(np.square(audio[: n * step].reshape(n, step), dtype=np.float64), axis=1)
    return np.asarray(10.0 * np.log10(np.maximum(power, 1e-20)), dtype=np.float32)


def refine_onset(
    audio: FloatArray, sample_rate: int, rise_fraction: float = 0.25, peak_from: int = 0
) -> int:
    """Sample offset of the onset within ``audio``: the rise to the loudest millisecond at or
    after sample ``peak_from``, which may start before it (``peak_from`` when nothing stands
    out). The audio before ``peak_from`` is there for the rise and the background only: the
    triggering window may begin after the sound did (its first window scored too low)."""
    env = envelope_db(audio, sample_rate, ENVELOPE_S)
    step = max(1, round(sample_rate * ENVELOPE_S))
    first_ms = min(peak_from // step, env.size)
    if env.size - first_ms < 3:
        return peak_from
    peak = first_ms + int(np.argmax(env[first_ms:]))
    background = float(np.percentile(env, 20))
    excess = float(env[peak]) - background
    if excess < 6.0:  # no clear rise: keep the window start
        return peak_from
    level = background + rise_fraction * excess
    below = np.nonzero(env[: peak + 1] < level)[0]
    first = int(below[-1]) + 1 if below.size else 0
    return first * step


def peak_level_dbfs(audio: FloatArray, sample_rate: int) -> float:
    """Loudest 50 ms RMS level of ``audio`` in dBFS (a full-scale sine is −3 dBFS)."""
    if audio.size == 0:
        return FLOOR_DB
    env = envelope_db(audio, sample_rate, min(LEVEL_FRAME_S, audio.size / sample_rate))
    return float(np.clip(env.max(), FLOOR_DB, 0.0))
