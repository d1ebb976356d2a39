"""The scipy-free mel products and FFTs of the front-ends against dense float64 references."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.fft

from ouie.node.frontends import mn04, yamnet
from ouie.node.frontends.banded import BandedWeights
from ouie.node.frontends.scratch import Scratch


def _spectra(frames: int, bins: int, seed: int = 0) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).standard_normal((frames, bins))).astype(np.float32)


@pytest.mark.parametrize(
    "weights", [yamnet.mel_matrix(), mn04.mel_banks().T], ids=["yamnet", "mn04"]
)
@pytest.mark.parametrize("frames", [1, 96, 700])
def test_banded_product_equals_dense_product(weights: np.ndarray, frames: int) -> None:
    spectra = _spectra(frames, weights.shape[0])
    dense = weights.astype(np.float64).T @ spectra.astype(np.float64).T
    ours = BandedWeights(weights).bands_first(spectra)
    assert ours.shape == (weights.shape[1], frames)
    np.testing.assert_allclose(ours, dense, rtol=2e-6, atol=1e-7)


def test_empty_and_top_bands() -> None:
    weights = np.zeros((10, 3), dtype=np.float32)
    weights[0:3, 0] = [0.5, 1.0, 0.5]  # middle band left empty
    weights[8:10, 2] = [1.0, 2.0]  # at the top: read from further down
    spectra = _spectra(4, 10)
    np.testing.assert_allclose(
        BandedWeights(weights).bands_first(spectra), weights.T @ spectra.T, rtol=1e-6
    )


def _yamnet_reference(windows: np.ndarray) -> np.ndarray:
    """The front-end as it was before dropping scipy: float32 FFT, dense float64 product."""
    frames = np.lib.stride_tricks.sliding_window_view(windows, yamnet.FRAME, axis=-1)
    frames = frames[..., :: yamnet.HOP, :] * yamnet.periodic_hann()
    magnitude = np.abs(scipy.fft.rfft(frames, n=yamnet.FFT, axis=-1, workers=1))
    mel = magnitude.astype(np.float64) @ yamnet.mel_matrix().astype(np.float64)
    return np.log(mel + yamnet.LOG_OFFSET)


@pytest.mark.parametrize("scale", [1e-4, 0.05, 1.0])
def test_yamnet_log_mel_within_1e5_of_the_scipy_front_end(scale: float) -> None:
    rng = np.random.default_rng(11)
    windows = np.clip(scale * rng.standard_normal((7, yamnet.PATCH_SAMPLES)), -1, 1)
    windows = windows.astype(np.float32)
    ours = yamnet.log_mel_batch(windows)
    np.testing.assert_allclose(ours, _yamnet_reference(windows), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(ours[3], yamnet.log_mel(windows[3]))


def test_yamnet_log_mel_of_long_audio_steps_through_frames() -> None:
    audio = (0.1 * np.random.default_rng(2).standard_normal(5 * yamnet.SAMPLE_RATE)).astype(
        np.float32
    )
    ours = yamnet.log_mel(audio)
    reference = _yamnet_reference(audio[None, :])[0]
    assert ours.shape == reference.shape == (498, yamnet.N_MELS)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5)


def test_front_ends_give_the_same_answer_in_threads() -> None:
    rng = np.random.default_rng(4)
    inputs = [(0.1 * rng.standard_normal((3, 32000))).astype(np.float32) for _ in range(4)]
    expected = [mn04.log_mel_batch(x) for x in inputs]
    results: dict[int, np.ndarray] = {}

    def run(index: int) -> None:
        for _ in range(5):
            results[index] = mn04.log_mel_batch(inputs[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, value in enumerate(expected):
        np.testing.assert_array_equal(results[index], value)


def test_scratch_lends_its_arrays_to_one_caller_at_a_time() -> None:
    scratch = Scratch()
    with scratch.borrow() as first:
        kept = first.array("x", (4,), np.float32)
        with scratch.borrow() as second:  # lent out: fresh arrays, no waiting
            assert not np.shares_memory(second.array("x", (4,), np.float32), kept)
    with scratch.borrow() as again:
        assert np.shares_memory(again.array("x", (2,), np.float32), kept)
