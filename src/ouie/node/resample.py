"""Polyphase resampling in numpy: scipy's ``resample_poly`` default, offline and streaming.

The node must not import scipy (``scipy.signal`` alone takes ~100 MB of resident memory on
a device with a 150 MB budget), so the filter design and the polyphase filtering are done
here. Output sample ``k`` of ``resample_poly(x, up, down)`` is

    y[k] = Σ_j h[j] · x_up[k·down + half_len − j]

with ``h`` the default low-pass (``firwin(2·half_len + 1, 1/max(up, down),
window=("kaiser", 5.0))`` scaled by ``up``), ``half_len = 10·max(up, down)`` and ``x_up`` the
input with ``up − 1`` zeros after every sample. Only every ``up``-th tap meets a non-zero
``x_up`` sample, so each output is a short dot product of ``taps`` consecutive input
samples with one of ``up`` phase filters. Both the phase and the first input sample of
output ``k`` repeat every ``up`` outputs (shifted by ``down`` inputs).

Every output is computed the same way from the same input samples, whether the signal
arrives at once (``resample``) or in chunks (``StreamResampler``), so streaming and offline
give bit-identical samples.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.intp]

KAISER_BETA = 5.0  # resample_poly's default window, ("kaiser", 5.0)
HALF_LEN_PER_RATE = 10  # resample_poly: the filter has 10·max(up, down) taps on each side
MAX_DENOMINATOR = 1000  # rate ratios become fractions with denominators up to this
#: Outputs × taps computed per step: the gathered windows (~256 KB) stay in cache.
_ELEMENTS_PER_STEP = 65536


def rate_ratio(rate: int, target: int) -> tuple[int, int]:
    """``(up, down)``, lowest terms, with ``target / rate ≈ up / down``."""
    ratio = Fraction(target, rate).limit_denominator(MAX_DENOMINATOR)
    return ratio.numerator, ratio.denominator


def lowpass_filter(up: int, down: int) -> npt.NDArray[np.float64]:
    """``scipy.signal.firwin(2·half_len + 1, 1/max(up, down), window=("kaiser", 5.0))``.

    A windowed sinc with cutoff at the lower of the two Nyquist rates, normalised to unit
    gain at DC as ``firwin`` does. ``np.kaiser`` is scipy's symmetric Kaiser window.
    """
    max_rate = max(up, down)
    half_len = HALF_LEN_PER_RATE * max_rate
    cutoff = 1.0 / max_rate
    offsets = np.arange(2 * half_len + 1, dtype=np.float64) - half_len
    taps = cutoff * np.sinc(cutoff * offsets) * np.kaiser(2 * half_len + 1, KAISER_BETA)
    normalised: npt.NDArray[np.float64] = taps / np.sum(taps)
    return normalised


class Polyphase:
    """The ``up``/``down`` polyphase filter and the input span each output sample reads."""

    def __init__(self, up: int, down: int) -> None:
        if up < 1 or down < 1 or math.gcd(up, down) != 1:
            raise ValueError(f"up and down must be coprime positive integers, got {up}, {down}")
        self.up, self.down = up, down
        half_len = HALF_LEN_PER_RATE * max(up, down)
        # As resample_poly does for float32 input: the filter rounded to float32, then × up.
        full = lowpass_filter(up, down).astype(np.float32) * np.float32(up)
        self.taps = -(-full.size // up)  # input samples under the filter for one output
        padded = np.zeros(self.taps * up, dtype=np.float32)
        padded[: full.size] = full
        # bank[p, m] multiplies input sample start + m for phase p: every up-th tap, reversed.
        bank = padded.reshape(self.taps, up).T[:, ::-1]
        positions = np.arange(up) * down + half_len  # of outputs 0..up-1 on the upsampled grid
        cycle_phase = positions % up
        cycle_start = positions // up - (self.taps - 1)
        # Per output row: its filter and first input sample, for up - 1 + `step` outputs, so
        # a run of `step` outputs starting at any phase is one slice of each table.
        self.step = up * max(1, _ELEMENTS_PER_STEP // (up * self.taps))
        rows = np.arange(self.step + up - 1)
        self._row_filters = np.ascontiguousarray(bank[cycle_phase[rows % up]])
        self._row_starts: IntArray = (rows // up) * down + cycle_start[rows % up]
        self._cycle_start: IntArray = cycle_start
        #: Zeros the offline path puts before the signal (the first outputs reach back).
        self.lead = max(0, -int(cycle_start.min()))

    def output_length(self, n_samples: int) -> int:
        """``ceil(n · up / down)``, what ``resample_poly`` returns for ``n`` input samples."""
        return -(-n_samples * self.up // self.down)

    def first_input(self, k: int) -> int:
        """Index of the first input sample that output ``k`` reads (may be negative)."""
        cycles, row = divmod(k, self.up)
        return cycles * self.down + int(self._row_starts[row])

    def computable(self, n_inputs: int) -> int:
        """How many outputs (from 0) read only input samples before ``n_inputs``."""
        # first_input never decreases with k, so these outputs are a prefix: count, per
        # phase row, the cycles whose window ends in time.
        last_start = n_inputs - self.taps
        per_row = (last_start - self._cycle_start) // self.down + 1
        return int(np.maximum(per_row, 0).sum())

    def outputs(self, signal: FloatArray, offset: int, first: int, count: int) -> FloatArray:
        """Outputs ``first .. first + count - 1``; ``signal[i]`` is input sample ``offset + i``.

        ``signal`` must hold every input sample those outputs read (zeros outside the
        stream). Runs in steps of ``step`` outputs to bound the temporary memory.
        """
        out = np.empty(count, dtype=np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(signal, self.taps)
        for done in range(0, count, self.step):
            n = min(self.step, count - done)
            cycles, row = divmod(first + done, self.up)
            shift = cycles * self.down - offset
            if self.up == 1:  # windows evenly spaced by `down`: a strided view, no copy
                first_start = int(self._row_starts[0]) + shift
                selected = windows[first_start : first_start + (n - 1) * self.down + 1 : self.down]
            else:
                selected = windows[self._row_starts[row : row + n] + shift]  # [n, taps] copy
            # einsum without `optimize` never calls BLAS (no threads) and runs one dot-product
            # kernel per row whose order of additions depends only on the row length, so
            # an output sample comes out the same wherever its window lies in memory.
            np.einsum(
                "ij,ij->i",
                selected,
                self._row_filters[row : row + n],
                out=out[done : done + n],
            )
        return out

    def resample(self, signal: FloatArray) -> FloatArray:
        """The whole of ``signal`` resampled, zeros assumed before and after it."""
        count = self.output_length(signal.size)
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        last_read = self.first_input(count - 1) + self.taps
        padded = np.concatenate(
            [
                np.zeros(self.lead, dtype=np.float32),
                np.asarray(signal, dtype=np.float32),
                np.zeros(max(0, last_read - signal.size), dtype=np.float32),
            ]
        )
        return self.outputs(padded, -self.lead, 0, count)


@lru_cache(maxsize=8)
def polyphase(up: int, down: int) -> Polyphase:
    """One ``Polyphase`` per ratio: designing the filter costs more than a short chunk."""
    return Polyphase(up, down)


def resample(signal: FloatArray, rate: int, target: int) -> FloatArray:
    """``signal`` at ``rate`` → ``target``, as ``scipy.signal.resample_poly`` with defaults."""
    mono = np.asarray(signal, dtype=np.float32)
    if mono.ndim != 1:
        raise ValueError(f"expected mono [samples] audio, got shape {mono.shape}")
    up, down = rate_ratio(rate, target)
    return mono if up == down else polyphase(up, down).resample(mono)


class StreamResampler:
    """Chunks in, resampled chunks out, sample-for-sample what ``resample`` gives offline.

    An output is produced as soon as every input sample it reads has arrived, so the delay
    is half the filter: ``10·max(up, down)/up`` input samples (0.6 ms from 32 or 44.1 kHz).
    """

    def __init__(self, rate: int, target: int) -> None:
        self.up, self.down = rate_ratio(rate, target)
        self.passthrough = self.up == self.down
        self._filter = None if self.passthrough else polyphase(self.up, self.down)
        lead = 0 if self._filter is None else self._filter.lead
        self._buffer = np.zeros(lead, dtype=np.float32)  # zeros before the start
        self._offset = -lead  # input index of _buffer[0]
        self._received = 0  # input samples pushed so far
        self._next = 0  # index of the next output

    def push(self, samples: FloatArray) -> FloatArray:
        chunk = np.asarray(samples, dtype=np.float32)
        if self._filter is None:
            return chunk
        self._received += chunk.size
        self._buffer = np.concatenate([self._buffer, chunk])
        return self._emit(self._filter, self._filter.computable(self._received) - self._next)

    def flush(self) -> FloatArray:
        """Resample what is left, treating the end of the stream like the offline path does."""
        if self._filter is None:
            return np.zeros(0, dtype=np.float32)
        count = self._filter.output_length(self._received) - self._next
        if count <= 0:
            return np.zeros(0, dtype=np.float32)
        last_read = self._filter.first_input(self._next + count - 1) + self._filter.taps
        missing = max(0, last_read - (self._offset + self._buffer.size))
        self._buffer = np.concatenate([self._buffer, np.zeros(missing, dtype=np.float32)])
        return self._emit(self._filter, count)

    def _emit(self, poly: Polyphase, count: int) -> FloatArray:
        """The next ``count`` outputs; input samples no later output reads are dropped."""
        if count <= 0:
            return np.zeros(0, dtype=np.float32)
        out = poly.outputs(self._buffer, self._offset, self._next, count)
        self._next += count
        keep_from = poly.first_input(self._next) - self._offset
        self._buffer = self._buffer[keep_from:]
        self._offset += keep_from
        return out
