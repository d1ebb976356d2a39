"""A bounded in-RAM ring of recent samples, addressed by absolute sample index.

This is the only place a node keeps audio: a few seconds, overwritten continuously, never
written anywhere. The speech guard and onset refinement read spans of it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


class RingBuffer:
    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("ring buffer capacity must be positive")
        self.capacity = capacity
        self._data = np.zeros(capacity, dtype=np.float32)
        self.total = 0  # samples ever appended; the newest sample has index total - 1

    @property
    def oldest(self) -> int:
        return max(0, self.total - self.capacity)

    def extend(self, samples: FloatArray) -> None:
        """Append any number of samples (older ones beyond capacity are simply gone)."""
        samples = np.asarray(samples, dtype=np.float32)
        n = samples.size
        if n == 0:
            return
        keep = samples[-self.capacity :]
        start = (self.total + n - keep.size) % self.capacity
        first = min(keep.size, self.capacity - start)
        self._data[start : start + first] = keep[:first]
        self._data[: keep.size - first] = keep[first:]
        self.total += n

    def span(self, start: int, end: int) -> FloatArray:
        """Samples [start, end) that are still held (clamped to what the ring has)."""
        start = max(start, self.oldest)
        end = min(end, self.total)
        if end <= start:
            return np.zeros(0, dtype=np.float32)
        indices = np.arange(start, end) % self.capacity
        return self._data[indices].copy()
