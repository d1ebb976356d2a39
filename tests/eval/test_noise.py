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
