"""The speech mixtures of ``ouie eval privacy`` and ``ouie eval tune`` (``ouie.eval.noise``)."""

from __future__ import annotations

import numpy as np
import pytest

from ouie.eval.noise import RATE, mix, overlay, street_noise


def test_mixing_helpers_keep_length_and_range() -> None:
    rng = np.random.default_rng(1)
    speech = (rng.standard_normal(RATE) * 0.1).astype(np.float32)
    noise = street_noise(RATE // 2, rng)
    mixed = mix(speech, noise, ratio_db=6.0)
    assert mixed.shape == speech.shape and np.max(np.abs(mixed)) <= 1.0
    burst = np.ones(800, dtype=np.float32)
    laid = overlay(speech, burst)
    assert laid.shape == speech.shape
    assert np.max(np.abs(laid)) == pytest.approx(0.8, abs=0.25)


def test_fade_edges_ramps_both_ends_of_a_copy() -> None:
    from ouie.eval.backgrounds import fade_edges

    audio = np.ones(1000, np.float32)
    out = fade_edges(audio, 100)
    assert out[0] == 0.0 and out[-1] == 0.0 and np.all(np.diff(out[:100]) > 0)
    assert np.all(out[100:900] == 1.0)
    assert np.all(audio == 1.0)
    assert fade_edges(np.ones(3, np.float32), 100)[1] == 1.0  # at most half the clip each
