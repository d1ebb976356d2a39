"""YAMNet's published log-mel front-end, in numpy.

16 kHz mono in [-1, 1]; 25 ms frames (400 samples) every 10 ms (160); periodic Hann window;
512-point FFT magnitude; 64 HTK-mel triangular bands from 125 to 7500 Hz; ln(mel + 0.001).
Also the front-end of ouie-compact, so both share one verified implementation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from ouie.node.frontends.banded import BandedWeights
from ouie.node.frontends.scratch import Scratch, windowed_rfft

SAMPLE_RATE = 16000
FRAME = 400
HOP = 160
FFT = 512
N_MELS = 64
F_MIN = 125.0
F_MAX = 7500.0
LOG_OFFSET = 0.001
PATCH_FRAMES = 96  # 0.96 s
PATCH_SAMPLES = FRAME + (PATCH_FRAMES - 1) * HOP  # 15600 samples give exactly 96 frames
#: Frames transformed per step: bounds the kept work arrays (``_SCRATCH``) to ~3 MB.
_FRAMES_PER_STEP = 192
_SCRATCH = Scratch()


def hz_to_mel(freq: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 1127.0 * np.log1p(freq / 700.0)


@lru_cache(maxsize=1)
def mel_matrix() -> npt.NDArray[np.float32]:
    """[FFT//2+1, N_MELS] weights, as TensorFlow's linear_to_mel_weight_matrix builds them."""
    n_bins = FFT // 2 + 1
    bin_mel = hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2.0, n_bins))[1:]  # DC bin gets no weight
    edges = np.linspace(hz_to_mel(np.array(F_MIN)), hz_to_mel(np.array(F_MAX)), N_MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower[None, :]) / (center - lower)[None, :]
    falling = (upper[None, :] - bin_mel[:, None]) / (upper - center)[None, :]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.vstack([np.zeros((1, N_MELS)), weights]).astype(np.float32)


@lru_cache(maxsize=1)
def _mel_bands() -> BandedWeights:
    # 461 non-zero weights of 16,448, in runs of at most 17 bins: a banded product, which
    # needs neither BLAS (threads spinning on a pinned core) nor scipy.sparse (memory).
    return BandedWeights(mel_matrix())


def _to_mel(magnitude: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """``[..., 257]`` magnitudes → ``[..., 64]`` log-mel."""
    flat = magnitude.reshape(-1, magnitude.shape[-1])
    mel = _mel_bands().bands_first(flat).T
    out = np.log(mel + np.float32(LOG_OFFSET)).reshape(*magnitude.shape[:-1], N_MELS)
    return np.asarray(out, dtype=np.float32)


def _log_mel_frames(frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Log-mel ``[..., 64]`` of ``[..., FRAME]`` frames: Hann, |FFT|, mel, log."""
    with _SCRATCH.borrow() as arrays:
        spectrum = windowed_rfft(frames, periodic_hann(), FFT, arrays)
        magnitude = arrays.array("magnitude", spectrum.shape, np.float64)
        np.abs(spectrum, out=magnitude)
        return _to_mel(magnitude)


@lru_cache(maxsize=1)
def periodic_hann() -> npt.NDArray[np.float32]:
    n = np.arange(FRAME)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / FRAME)).astype(np.float32)


def frame_signal(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """[n_frames, FRAME] views of ``audio`` (no padding: frames that fit entirely)."""
    if audio.shape[-1] < FRAME:
        return np.zeros((0, FRAME), dtype=np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(audio, FRAME)[::HOP]
    return np.ascontiguousarray(windows, dtype=np.float32)


def log_mel(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Log-mel frames ``[n_frames, 64]`` of 16 kHz mono audio."""
    frames = frame_signal(np.asarray(audio, dtype=np.float32))
    out = np.empty((frames.shape[0], N_MELS), dtype=np.float32)
    for start in range(0, frames.shape[0], _FRAMES_PER_STEP):
        step = frames[start : start + _FRAMES_PER_STEP]
        out[start : start + _FRAMES_PER_STEP] = _log_mel_frames(step)
    return out


def log_mel_batch(windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``[n, samples]`` windows → ``[n, frames, 64]`` (all frames of all windows at once)."""
    windows = np.asarray(windows, dtype=np.float32)
    if windows.shape[0] == 0 or windows.shape[-1] < FRAME:
        n_frames = max(0, (windows.shape[-1] - FRAME) // HOP + 1)
        return np.zeros((windows.shape[0], n_frames, N_MELS), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(windows, FRAME, axis=-1)[..., ::HOP, :]
    out = np.empty((windows.shape[0], frames.shape[1], N_MELS), dtype=np.float32)
    per_step = max(1, _FRAMES_PER_STEP // frames.shape[1])  # whole windows
    for start in range(0, windows.shape[0], per_step):
        step = frames[start : start + per_step]
        out[start : start + per_step] = _log_mel_frames(step)
    return out


def window_patches(frames: npt.NDArray[np.float32], who: str) -> npt.NDArray[np.float32]:
    """Log-mel patches ``[n, 96, 64]`` of classifier windows ``[n, 15600]``.

    Raises ``ValueError`` naming ``who`` (the backend) when the windows have another shape.
    """
    windows = np.asarray(frames, dtype=np.float32)
    if windows.ndim != 2 or windows.shape[1] != PATCH_SAMPLES:
        raise ValueError(
            f"{who} expects windows of shape [n, {PATCH_SAMPLES}], got {list(windows.shape)}"
        )
    if windows.shape[0] == 0:
        return np.zeros((0, PATCH_FRAMES, N_MELS), dtype=np.float32)
    return log_mel_batch(windows)
