"""Streaming resampling with the same polyphase filter as the offline path.

Chunks are resampled with ``resample_poly`` on overlapping blocks: each block carries
``context`` input samples of history and of look-ahead, and only the output that lies
between them is kept. With block edges on multiples of ``down`` the kept output aligns
exactly with the offline result, so streaming and file detection see the same samples.
The look-ahead costs a couple of milliseconds of latency.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import numpy.typing as npt
from scipy.signal import firwin, resample_poly

FloatArray = npt.NDArray[np.float32]


class StreamResampler:
    def __init__(self, rate: int, target: int) -> None:
        ratio = Fraction(target, rate).limit_denominator(1000)
        self.up, self.down = ratio.numerator, ratio.denominator
        self.passthrough = self.up == self.down
        # resample_poly's default filter spans 10·max(up, down) taps at the upsampled rate.
        half_taps_in = math.ceil(10 * max(self.up, self.down) / self.up) + 1
        self.context = math.ceil(half_taps_in / self.down) * self.down
        # resample_poly's own default filter, designed once instead of on every chunk.
        taps = 2 * 10 * max(self.up, self.down) + 1
        self._filter = (
            None
            if self.passthrough
            else firwin(taps, 1.0 / max(self.up, self.down), window=("kaiser", 5.0))
        )
        self._history = np.zeros(self.context, dtype=np.float32)  # zeros before the start
        self._pending = np.zeros(0, dtype=np.float32)

    def _resample(self, block: FloatArray) -> FloatArray:
        return np.asarray(
            resample_poly(block, self.up, self.down, window=self._filter), dtype=np.float32
        )

    def push(self, samples: FloatArray) -> FloatArray:
        if self.passthrough:
            return np.asarray(samples, dtype=np.float32)
        self._pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        ready = ((self._pending.size - self.context) // self.down) * self.down
        if ready <= 0:
            return np.zeros(0, dtype=np.float32)
        block = np.concatenate([self._history, self._pending[: ready + self.context]])
        out = self._resample(block)
        lead = self.context * self.up // self.down
        kept = out[lead : lead + ready * self.up // self.down]
        consumed = self._pending[:ready]
        self._history = np.concatenate([self._history, consumed])[-self.context :]
        self._pending = self._pending[ready:]
        return kept

    def flush(self) -> FloatArray:
        """Resample what is left, treating the end of the stream like the offline path does."""
        if self.passthrough or self._pending.size == 0:
            return np.zeros(0, dtype=np.float32)
        block = np.concatenate([self._history, self._pending])
        out = self._resample(block)
        lead = self.context * self.up // self.down
        total_out = math.ceil(block.size * self.up / self.down)
        kept = out[lead:total_out]
        self._pending = np.zeros(0, dtype=np.float32)
        return kept
