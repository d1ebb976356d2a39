"""EfficientAT's log-mel front-end (``AugmentMelSTFT`` in eval mode), in numpy.

32 kHz mono in [-1, 1]:

1. pre-emphasis as EfficientAT does it, a *valid* 1-D convolution with ``[-0.97, 1]``:
   ``y[n] = x[n + 1] - 0.97 x[n]``, so ``len(y) == len(x) - 1``;
2. STFT as ``torch.stft(n_fft=1024, hop_length=320, win_length=800, window=symmetric Hann(800),
   center=True, pad_mode="reflect")``: the window sits zero-padded in the middle of the
   1024-point frame; frames are centred on every 320th sample of the reflect-padded signal,
   giving ``1 + len(y) // 320`` frames (100 for one second);
3. power spectrum; 128 Kaldi mel filters (``torchaudio.compliance.kaldi.get_mel_banks(128,
   1024, 32000, 0, 15000, ...)``: triangles on the 1127·ln(1 + f/700) scale over the 512
   non-Nyquist bins, Nyquist weight 0);
4. ``(ln(mel + 1e-5) + 4.5) / 5``.

Output ``[128, frames]`` (mels first, as the network wants its input image).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from ouie.node.frontends.banded import BandedWeights
from ouie.node.frontends.scratch import Scratch, windowed_rfft

FloatArray = npt.NDArray[np.float32]

SAMPLE_RATE = 32000
N_FFT = 1024
WIN_LENGTH = 800
HOP = 320
N_MELS = 128
F_MIN = 0.0
F_MAX = 15000.0
PREEMPHASIS = 0.97
LOG_OFFSET = 1e-5
NORM_SHIFT = 4.5
NORM_SCALE = 5.0
WINDOW_OFFSET = (N_FFT - WIN_LENGTH) // 2  # where torch.stft puts the shorter window
_SCRATCH = Scratch()


def n_frames(n_samples: int) -> int:
    """Frames produced for ``n_samples`` of input (pre-emphasis drops one sample)."""
    return 1 + (n_samples - 1) // HOP


def _kaldi_mel(freq: npt.NDArray[np.float64] | float) -> npt.NDArray[np.float64]:
    return np.asarray(1127.0 * np.log1p(np.asarray(freq, dtype=np.float64) / 700.0))


@lru_cache(maxsize=1)
def mel_banks() -> FloatArray:
    """``[N_MELS, N_FFT // 2 + 1]``: Kaldi's ``get_mel_banks`` plus a zero Nyquist column."""
    n_bins = N_FFT // 2
    fft_bin_width = SAMPLE_RATE / N_FFT
    mel_low = 1127.0 * math.log(1.0 + F_MIN / 700.0)
    mel_high = 1127.0 * math.log(1.0 + F_MAX / 700.0)
    delta = (mel_high - mel_low) / (N_MELS + 1)
    index = np.arange(N_MELS, dtype=np.float64)[:, None]
    left = mel_low + index * delta
    center = mel_low + (index + 1.0) * delta
    right = mel_low + (index + 2.0) * delta
    mel = _kaldi_mel(fft_bin_width * np.arange(n_bins, dtype=np.float64))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.hstack([banks, np.zeros((N_MELS, 1))]).astype(np.float32)


@lru_cache(maxsize=1)
def _mel_bands() -> BandedWeights:
    # 947 non-zero weights of 65,664: a banded product never competes with the classifier
    # for cores as a multi-threaded BLAS would, and needs no scipy.sparse (memory).
    return BandedWeights(mel_banks().T)


@lru_cache(maxsize=1)
def hann_window() -> FloatArray:
    """Symmetric Hann window of ``WIN_LENGTH`` samples (``torch.hann_window(periodic=False)``)."""
    n = np.arange(WIN_LENGTH, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / (WIN_LENGTH - 1))).astype(np.float32)


def _frames(padded: FloatArray, count: int) -> FloatArray:
    """``[..., count, WIN_LENGTH]`` views: the non-zero part of each centred 1024-point frame."""
    start = WINDOW_OFFSET
    stop = start + (count - 1) * HOP + WIN_LENGTH
    view = np.lib.stride_tricks.sliding_window_view(padded[..., start:stop], WIN_LENGTH, axis=-1)
    return view[..., ::HOP, :]


def _log_mel_padded(padded: FloatArray, count: int, out: FloatArray) -> None:
    """Fill ``out`` ``[n, N_MELS, count]`` from reflect-padded pre-emphasised windows ``[n, _]``."""
    # torch.stft centres the window in the frame; zero padding on one side instead only
    # shifts the phase: the power is the same.
    with _SCRATCH.borrow() as arrays:
        spectrum = windowed_rfft(_frames(padded, count), hann_window(), N_FFT, arrays)
        power = arrays.array("power", spectrum.shape, np.float64)
        np.abs(spectrum, out=power)
        power *= power
        mel = _mel_bands().bands_first(power.reshape(-1, power.shape[-1]))  # [mels, n*count]
    logmel = np.log(mel + np.float32(LOG_OFFSET))
    logmel += np.float32(NORM_SHIFT)
    logmel /= np.float32(NORM_SCALE)
    out[...] = logmel.reshape(N_MELS, padded.shape[0], count).transpose(1, 0, 2)


#: Frames computed per step: keeps the intermediates (~1.3 MB) in cache for large batches.
_FRAMES_PER_STEP = 400


def log_mel_batch(windows: FloatArray) -> FloatArray:
    """``[n, samples]`` 32 kHz windows → ``[n, N_MELS, frames]`` normalised log-mel."""
    audio = np.asarray(windows, dtype=np.float32)
    if audio.ndim != 2:
        raise ValueError(f"expected [n, samples] windows, got shape {audio.shape}")
    if audio.shape[1] < 2:
        raise ValueError("a window needs at least 2 samples")
    emphasised = audio[:, 1:] - np.float32(PREEMPHASIS) * audio[:, :-1]
    length = emphasised.shape[1]
    pad = N_FFT // 2
    if length <= pad:
        raise ValueError(f"a window needs more than {pad + 1} samples for reflect padding")
    padded = np.pad(emphasised, ((0, 0), (pad, pad)), mode="reflect")
    count = 1 + length // HOP
    out = np.empty((audio.shape[0], N_MELS, count), dtype=np.float32)
    step = max(1, _FRAMES_PER_STEP // count)
    for start in range(0, audio.shape[0], step):
        _log_mel_padded(padded[start : start + step], count, out[start : start + step])
    return out


def log_mel(audio: FloatArray) -> FloatArray:
    """Log-mel ``[N_MELS, frames]`` of one 32 kHz mono signal."""
    single: FloatArray = log_mel_batch(np.asarray(audio, dtype=np.float32)[None, :])[0]
    return single
