"""The numpy mn04 front-end against a torch transcription of EfficientAT's ``AugmentMelSTFT``
(eval mode): pre-emphasis conv, ``torch.stft``, and torchaudio's Kaldi ``get_mel_banks``
rewritten in torch (no torchaudio needed)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from ouie.node.frontends.mn04 import (
    HOP,
    N_MELS,
    SAMPLE_RATE,
    hann_window,
    log_mel,
    log_mel_batch,
    mel_banks,
    n_frames,
)
from tests._services import need


def _torch_kaldi_mel_banks(torch: Any) -> Any:
    """``torchaudio.compliance.kaldi.get_mel_banks(128, 1024, 32000, 0.0, 15000, 100.0, -500.0,
    1.0)`` transcribed line by line (float32 tensors as torchaudio builds them), Nyquist padded."""

    def mel_scale(freq: Any) -> Any:
        return 1127.0 * (1.0 + freq / 700.0).log()

    num_bins, window_length_padded, sample_freq = 128, 1024, 32000.0
    low_freq, high_freq = 0.0, 15000.0
    num_fft_bins = window_length_padded // 2
    fft_bin_width = sample_freq / window_length_padded
    mel_low = 1127.0 * math.log(1.0 + low_freq / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high_freq / 700.0)
    delta = (mel_high - mel_low) / (num_bins + 1)
    index = torch.arange(num_bins).unsqueeze(1)
    left = mel_low + index * delta
    center = mel_low + (index + 1.0) * delta
    right = mel_low + (index + 2.0) * delta
    mel = mel_scale(fft_bin_width * torch.arange(num_fft_bins)).unsqueeze(0)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.max(torch.zeros(1), torch.min(up, down))
    return torch.nn.functional.pad(banks, (0, 1), mode="constant", value=0)


def _torch_reference(audio: np.ndarray) -> np.ndarray:
    need("torch")  # the reference front-end
    import torch

    x = torch.from_numpy(audio.astype(np.float32))[None]
    coefficient = torch.as_tensor([[[-0.97, 1.0]]])
    x = torch.nn.functional.conv1d(x.unsqueeze(1), coefficient).squeeze(1)
    spec = torch.stft(
        x,
        1024,
        hop_length=320,
        win_length=800,
        center=True,
        normalized=False,
        window=torch.hann_window(800, periodic=False),
        return_complex=True,
    )
    power = (torch.view_as_real(spec) ** 2).sum(dim=-1)
    mel = torch.matmul(_torch_kaldi_mel_banks(torch), power)
    return (((mel + 0.00001).log() + 4.5) / 5.0)[0].numpy()


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(SAMPLE_RATE, dtype=np.float64) / SAMPLE_RATE
    sweep = 0.5 * np.sin(2 * np.pi * (50.0 * t + 7000.0 * t**2))
    clicks = np.zeros(SAMPLE_RATE)
    clicks[::4000] = 0.9
    return {
        "noise": (0.3 * rng.standard_normal(SAMPLE_RATE)).clip(-1, 1).astype(np.float32),
        "sweep": sweep.astype(np.float32),
        "clicks": clicks.astype(np.float32),
        "silence": np.zeros(SAMPLE_RATE, dtype=np.float32),
        "short_odd": (0.1 * rng.standard_normal(12345)).astype(np.float32),
    }


@pytest.mark.parametrize("name", sorted(_signals()))
def test_log_mel_matches_torch_stft_reference(name: str) -> None:
    audio = _signals()[name]
    reference = _torch_reference(audio)
    ours = log_mel(audio)
    assert ours.shape == reference.shape == (N_MELS, n_frames(len(audio)))
    np.testing.assert_allclose(ours, reference, atol=2e-4, rtol=0)


def test_mel_banks_match_kaldi_transcription() -> None:
    need("torch")  # the reference mel banks
    import torch

    reference = _torch_kaldi_mel_banks(torch).numpy()
    # torchaudio builds the banks in float32, ours in float64: a few weights differ by ~1e-5.
    np.testing.assert_allclose(mel_banks(), reference, atol=3e-5)


def test_mel_banks_shape_and_nyquist() -> None:
    banks = mel_banks()
    assert banks.shape == (N_MELS, 513)
    assert np.all(banks[:, -1] == 0.0)
    assert np.all(banks.max(axis=1) > 0.15)  # every band, even the narrow low ones, has a bin
    top = np.nonzero(banks[-1])[0]
    assert top.max() * SAMPLE_RATE / 1024 < 15000.0


def test_window_is_symmetric_hann() -> None:
    window = hann_window()
    assert window.shape == (800,)
    assert window[0] == 0.0 and window[-1] == 0.0
    np.testing.assert_allclose(window, window[::-1], atol=1e-7)


def test_one_second_gives_100_frames_and_batches_agree() -> None:
    assert n_frames(SAMPLE_RATE) == 1 + (SAMPLE_RATE - 1) // HOP == 100
    rng = np.random.default_rng(1)
    windows = (0.2 * rng.standard_normal((6, SAMPLE_RATE))).astype(np.float32)  # > one step
    batch = log_mel_batch(windows)
    assert batch.shape == (6, N_MELS, 100) and batch.dtype == np.float32
    for i in range(6):
        np.testing.assert_allclose(batch[i], log_mel(windows[i]), atol=1e-6)
    silent = log_mel(np.zeros(SAMPLE_RATE, dtype=np.float32))
    np.testing.assert_allclose(silent, (math.log(1e-5) + 4.5) / 5.0, atol=1e-6)


def test_too_short_input_is_refused() -> None:
    with pytest.raises(ValueError):
        log_mel(np.zeros(100, dtype=np.float32))
