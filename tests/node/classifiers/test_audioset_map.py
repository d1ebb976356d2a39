"""Combining the AudioSet teachers' mapped scores."""

from __future__ import annotations

import numpy as np
import pytest

from ouie.node.classifiers.audioset_map import TEACHER_CLAMP, logit_mean


def test_logit_mean_is_the_geometric_mean_of_the_odds() -> None:
    a = np.array([[0.5, 0.9, 0.2]], np.float32)
    b = np.array([[0.5, 0.1, 0.2]], np.float32)
    np.testing.assert_allclose(logit_mean([a, b]), [[0.5, 0.5, 0.2]], rtol=1e-5)
    np.testing.assert_allclose(logit_mean([a]), a, rtol=1e-5)
    # one teacher's certainty is bounded: 0 counts as TEACHER_CLAMP, not as minus infinity
    zero = np.zeros((1, 3), np.float32)
    out = logit_mean([zero, np.full((1, 3), 0.99, np.float32)])
    odds = np.sqrt(TEACHER_CLAMP / (1 - TEACHER_CLAMP) * 99.0)
    np.testing.assert_allclose(out, odds / (1 + odds), rtol=1e-4)
    with pytest.raises(ValueError):
        logit_mean([])
