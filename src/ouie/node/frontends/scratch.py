"""Reusable work arrays for the front-ends, and the windowed FFT they share.

A window's temporaries (windowed frames, spectrum, band runs) add up to ~1 MB. Allocated
afresh on every call, glibc returned that memory to the kernel and faulted it back in each
time: ~190 page faults, which cost more than the FFT itself (0.6 ms instead of 0.25 ms a
YAMNet window on the benchmark machine). Reused, they are faulted in once.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt


class WorkArrays:
    """Named arrays that grow to the largest shape asked for."""

    def __init__(self) -> None:
        self._arrays: dict[str, npt.NDArray[Any]] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype: type[np.generic]) -> npt.NDArray[Any]:
        """An uninitialised C-contiguous ``shape`` array; valid until the next call for ``name``."""
        size = math.prod(shape)
        buffer = self._arrays.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != np.dtype(dtype):
            buffer = np.empty(size, dtype=dtype)
            self._arrays[name] = buffer
        return buffer[:size].reshape(shape)


class Scratch:
    """One set of ``WorkArrays``, lent to one caller at a time.

    A caller that finds them lent out (to another thread) gets fresh arrays instead of
    waiting: threads never block each other, and the memory kept does not grow with the
    number of threads (the simulator runs a pipeline thread per simulated sensor).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shared = WorkArrays()

    @contextmanager
    def borrow(self) -> Iterator[WorkArrays]:
        if not self._lock.acquire(blocking=False):
            yield WorkArrays()
            return
        try:
            yield self._shared
        finally:
            self._lock.release()


def windowed_rfft(
    frames: npt.NDArray[np.float32],
    window: npt.NDArray[np.float32],
    n_fft: int,
    arrays: WorkArrays,
) -> npt.NDArray[np.complex128]:
    """``rfft(window · frame)`` of ``[..., length]`` frames zero-padded to ``n_fft``.

    The result lives in ``arrays``: valid while they are borrowed.
    """
    length = frames.shape[-1]
    windowed = arrays.array("windowed_frames", frames.shape, np.float32)
    np.multiply(frames, window, out=windowed)  # in float32, then cast: faster than in float64
    # numpy's float64 FFT of an already padded array runs as fast as scipy's float32 one;
    # its float32 FFT (a float64 one between two casts) and its own padding (``n=``) are
    # 1.5-4x slower.
    padded = arrays.array("padded_frames", (*frames.shape[:-1], n_fft), np.float64)
    padded[..., :length] = windowed
    padded[..., length:] = 0.0
    spectrum = arrays.array("spectrum", (*frames.shape[:-1], n_fft // 2 + 1), np.complex128)
    np.fft.rfft(padded, axis=-1, out=spectrum)
    return spectrum
