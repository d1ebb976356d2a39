"""Street backgrounds for synthetic mixtures.

Two kinds (docs/eval.md, "Mixture generation"):

* ``ambience``: a random excerpt of a long (≥ 30 s) ambience recording of the fold.
* ``constructed``: where the fold has too little long ambience, non-target clips of the fold
  (never speech, never a target class) laid end to end with equal-power crossfades, each at
  its own level, over generated traffic-like noise: a low-passed brown-noise rumble plus
  randomly timed vehicle pass-bys (band-limited noise under a Gaussian envelope).

Everything is drawn from the ``numpy.random.Generator`` passed in, so a seed fixes the
background exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, sosfilt

FloatArray = npt.NDArray[np.float32]

CROSSFADE_S = 0.5
CLIP_LEVEL_JITTER_DB = 6.0
#: Traffic bed level relative to the clips' level, drawn uniformly from this range (dB).
TRAFFIC_RELATIVE_DB = (-6.0, 3.0)
#: Mean seconds between vehicle pass-bys in generated traffic.
PASS_BY_INTERVAL_S = 6.0
SILENT_RMS = 1e-4
MAX_SILENT_DRAWS = 50


def rms(audio: FloatArray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


def fade_edges(audio: FloatArray, samples: int) -> FloatArray:
    """A copy of ``audio`` with linear fades of ``samples`` at both ends (at most half its
    length each): no step into or out of silence where clips are cut or laid end to end."""
    out = audio.astype(np.float32, copy=True)
    n = min(samples, out.size // 2)
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        out[:n] *= ramp
        out[-n:] *= ramp[::-1]
    return out


def _normalised(audio: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    level = float(np.sqrt(np.mean(np.square(audio)))) if audio.size else 0.0
    return audio / level if level > 0 else audio


def traffic_noise(n_samples: int, rate: int, rng: np.random.Generator) -> FloatArray:
    """Traffic-like noise with unit RMS: a rumble bed plus vehicle pass-bys."""
    if n_samples == 0:
        return np.zeros(0, dtype=np.float32)
    nyquist = rate / 2
    # Rumble: brown noise (integrated white), high-passed at 20 Hz, low-passed at 800 Hz.
    brown = np.cumsum(rng.standard_normal(n_samples))
    rumble = sosfilt(butter(2, 20.0 / nyquist, btype="highpass", output="sos"), brown)
    rumble = sosfilt(butter(4, min(800.0, 0.9 * nyquist) / nyquist, output="sos"), rumble)
    bed = _normalised(np.asarray(rumble, dtype=np.float64))
    # Pass-bys: tyre/engine noise (100 Hz – 3 kHz) swelling and fading over a few seconds.
    duration = n_samples / rate
    n_pass = int(rng.poisson(duration / PASS_BY_INTERVAL_S))
    t = np.arange(n_samples) / rate
    band = butter(
        2, [100.0 / nyquist, min(3000.0, 0.9 * nyquist) / nyquist], btype="bandpass", output="sos"
    )
    passes = np.zeros(n_samples)
    for _ in range(n_pass):
        centre = rng.uniform(0.0, duration)
        width = rng.uniform(1.0, 3.0)
        gain = 10 ** (rng.uniform(-3.0, 9.0) / 20)
        lo = max(0, int((centre - 4 * width) * rate))
        hi = min(n_samples, int((centre + 4 * width) * rate) + 1)
        envelope = np.exp(-0.5 * ((t[lo:hi] - centre) / width) ** 2)
        noise = _normalised(sosfilt(band, rng.standard_normal(hi - lo)))
        passes[lo:hi] += gain * envelope * noise
    mixed = bed + passes
    return np.asarray(_normalised(mixed), dtype=np.float32)


def _equal_power_join(left: FloatArray, right: FloatArray, overlap: int) -> FloatArray:
    overlap = min(overlap, left.size, right.size)
    if overlap == 0:
        return np.concatenate([left, right])
    ramp = np.linspace(0.0, math.pi / 2, overlap, dtype=np.float64)
    fade_out, fade_in = np.cos(ramp), np.sin(ramp)
    middle = left[-overlap:] * fade_out + right[:overlap] * fade_in
    return np.concatenate([left[:-overlap], middle.astype(np.float32), right[overlap:]])


def constructed_background(
    n_samples: int,
    rate: int,
    pool: Sequence[FloatArray],
    rng: np.random.Generator,
) -> tuple[FloatArray, list[int]]:
    """Non-target clips end to end with crossfades, over traffic noise; unit RMS.

    ``pool`` may load its items lazily; returns the audio and the pool indices used.
    """
    traffic = traffic_noise(n_samples, rate, rng)
    overlap = round(CROSSFADE_S * rate)
    bed = np.zeros(0, dtype=np.float32)
    used: list[int] = []
    silent_in_a_row = 0
    while bed.size < n_samples and pool and silent_in_a_row < MAX_SILENT_DRAWS:
        index = int(rng.integers(len(pool)))
        clip = pool[index]
        level = rms(clip)
        if level <= SILENT_RMS:
            silent_in_a_row += 1
            continue
        silent_in_a_row = 0
        used.append(index)
        jitter = 10 ** (rng.uniform(-CLIP_LEVEL_JITTER_DB, CLIP_LEVEL_JITTER_DB) / 20)
        piece = (clip / level * jitter).astype(np.float32)
        bed = piece if bed.size == 0 else _equal_power_join(bed, piece, overlap)
    if bed.size < n_samples:  # no usable clip: traffic alone
        return traffic, []
    bed = bed[:n_samples]
    traffic_gain = 10 ** (rng.uniform(*TRAFFIC_RELATIVE_DB) / 20) * rms(bed)
    mixed = bed + traffic_gain * traffic
    level = rms(mixed)
    return (mixed / level).astype(np.float32), used


def ambience_excerpt(
    ambience: FloatArray, n_samples: int, rate: int, rng: np.random.Generator
) -> tuple[FloatArray, int]:
    """A random ``n_samples`` excerpt (unit RMS) and its start sample in the recording.

    A recording shorter than ``n_samples`` is looped with a crossfade.
    """
    if ambience.size == 0:
        raise ValueError("ambience recording is empty")
    source = ambience
    overlap = min(ambience.size // 4, round(CROSSFADE_S * rate))
    while source.size < n_samples:
        source = _equal_power_join(source, ambience, overlap)
    start = int(rng.integers(0, source.size - n_samples + 1))
    excerpt = source[start : start + n_samples]
    level = rms(excerpt)
    out = excerpt / level if level > 0 else excerpt
    return out.astype(np.float32), start
