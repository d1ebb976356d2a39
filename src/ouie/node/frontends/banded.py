"""Mel filterbank products in plain numpy: no scipy.sparse, no BLAS.

A mel matrix is almost all zeros: each band's triangle covers one short run of FFT bins
(at most 17 of YAMNet's 257, 24 of mn04's 513). A dense product wastes most of its work,
and numpy hands it to BLAS, whose threads spinning on a node pinned to one core made it
cost 6 ms a window. ``scipy.sparse`` avoided both, at ~50 MB of resident memory.

Here the bands are split into a few groups of neighbours; every band of a group reads the
same number of bins (the group's widest triangle), starting at its first non-zero weight,
and the weights outside its triangle are the matrix's own zeros. Triangles widen with
frequency, so four groups cut that padding to ~1.2-1.3x the non-zero weights. One row
gather of the bins-first spectrogram and one ``einsum`` per group (``einsum`` never calls
BLAS without ``optimize``) give every band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ouie.node.frontends.scratch import Scratch

FloatArray = npt.NDArray[np.float32]

#: Frames per step: bounds the gathered copy (padded weights × frames floats) to a few MB.
_FRAMES_PER_STEP = 512
GROUPS = 4  # more groups save little padding and cost one more einsum call each


@dataclass(frozen=True)
class _Group:
    bands: slice  # of the output
    rows: slice  # of the gathered runs: width rows per band
    width: int
    weights: FloatArray  # [bands, width]


def _runs(matrix: FloatArray) -> tuple[list[int], list[int]]:
    """First non-zero bin and run length of every band (an empty band reads one zero)."""
    firsts, widths = [], []
    for band in matrix.T:
        nonzero = np.flatnonzero(band)
        firsts.append(int(nonzero[0]) if nonzero.size else 0)
        widths.append(int(nonzero[-1] - nonzero[0]) + 1 if nonzero.size else 1)
    return firsts, widths


def _group_ends(widths: list[int], groups: int) -> list[int]:
    """End band of each group of neighbours, minimising the padded total (a small DP)."""
    n = len(widths)
    groups = min(groups, n)
    inf = float("inf")
    cost = [[inf] * (n + 1) for _ in range(groups + 1)]
    split = [[0] * (n + 1) for _ in range(groups + 1)]
    cost[0][0] = 0.0
    for used in range(1, groups + 1):
        for end in range(1, n + 1):
            widest = 0
            for start in range(end - 1, -1, -1):
                widest = max(widest, widths[start])
                candidate = cost[used - 1][start] + (end - start) * widest
                if candidate < cost[used][end]:
                    cost[used][end], split[used][end] = candidate, start
    used = min(range(1, groups + 1), key=lambda g: cost[g][n])
    ends, end = [], n
    while used > 0:
        ends.append(end)
        end, used = split[used][end], used - 1
    return ends[::-1]


class BandedWeights:
    """``weights.T @ spectra.T`` for a ``[bins, bands]`` matrix of short runs of weights."""

    def __init__(self, weights: npt.NDArray[np.floating], groups: int = GROUPS) -> None:
        matrix = np.asarray(weights, dtype=np.float32)
        if matrix.ndim != 2:
            raise ValueError(f"weights must be [bins, bands], got shape {matrix.shape}")
        self.n_bins, self.n_bands = matrix.shape
        firsts, widths = _runs(matrix)
        self._groups: list[_Group] = []
        bins: list[npt.NDArray[np.intp]] = []
        band, row = 0, 0
        for end in _group_ends(widths, groups):
            width = max(widths[band:end])
            # A band near the top reads its run from further down: the extra bins weigh 0.
            starts = np.minimum(np.array(firsts[band:end]), self.n_bins - width)
            group_bins = starts[:, None] + np.arange(width)[None, :]
            band_of_bin = np.arange(band, end)[:, None]
            weights_run = np.ascontiguousarray(matrix[group_bins, band_of_bin])
            n_rows = (end - band) * width
            self._groups.append(
                _Group(slice(band, end), slice(row, row + n_rows), width, weights_run)
            )
            bins.append(group_bins.ravel())
            band, row = end, row + n_rows
        self._bins = np.concatenate(bins)
        self._scratch = Scratch()

    @property
    def padded_size(self) -> int:
        """Weights multiplied per frame: the non-zero ones plus the groups' padding."""
        return int(self._bins.size)

    def bands_first(self, spectra: npt.NDArray[np.floating]) -> FloatArray:
        """``[frames, bins]`` → ``[bands, frames]`` float32 band energies."""
        if spectra.ndim != 2 or spectra.shape[1] != self.n_bins:
            raise ValueError(f"expected [frames, {self.n_bins}] spectra, got {spectra.shape}")
        frames = spectra.shape[0]
        out = np.empty((self.n_bands, frames), dtype=np.float32)
        for start in range(0, frames, _FRAMES_PER_STEP):
            stop = min(frames, start + _FRAMES_PER_STEP)
            self._bands_of_step(spectra[start:stop], out[:, start:stop])
        return out

    def _bands_of_step(self, spectra: npt.NDArray[np.floating], out: FloatArray) -> None:
        frames = spectra.shape[0]
        with self._scratch.borrow() as arrays:
            bins_first = arrays.array("bins_first", (self.n_bins, frames), np.float32)
            np.copyto(bins_first, spectra.T, casting="same_kind")
            runs = arrays.array("runs", (self._bins.size, frames), np.float32)
            # Whole rows, copied one by one; mode="clip" writes straight into `runs` (the
            # indices are all valid) where the default would copy through a temporary.
            np.take(bins_first, self._bins, axis=0, out=runs, mode="clip")
            for group in self._groups:
                group_runs = runs[group.rows].reshape(-1, group.width, frames)
                np.einsum("bwf,bw->bf", group_runs, group.weights, out=out[group.bands])
