"""A deterministic stand-in classifier for pipeline tests: loud windows score as gunshot.

It lets the event logic be tested exactly (known scores) without any model file.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ouie.core.labels import EVENT_LABELS, EventLabel


class LoudnessClassifier:
    """Scores ``label`` by the window's peak 10 ms RMS: ≥ −20 dBFS → 0.95, else 0.05."""

    model_id = "test-loudness"

    def __init__(
        self,
        label: EventLabel = EventLabel.GUNSHOT,
        sample_rate: int = 16000,
        window_s: float = 0.5,
        hop_s: float = 0.125,
        loud_dbfs: float = -20.0,
    ) -> None:
        self.label = label
        self.loud_dbfs = loud_dbfs
        self.sample_rate = sample_rate
        self.window_samples = round(window_s * sample_rate)
        self.hop_samples = round(hop_s * sample_rate)
        self.calls = 0

    def scores(self, frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        self.calls += 1
        step = self.sample_rate // 100
        n = frames.shape[1] // step
        rms = np.sqrt(
            np.mean(np.square(frames[:, : n * step].reshape(len(frames), n, step)), axis=2)
        )
        loud = 20 * np.log10(np.maximum(rms.max(axis=1), 1e-10)) >= self.loud_dbfs
        out = np.full((len(frames), len(EVENT_LABELS)), 0.05, dtype=np.float32)
        out[:, EVENT_LABELS.index(self.label)] = np.where(loud, 0.95, 0.05)
        return out
