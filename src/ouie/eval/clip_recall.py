"""Threshold-free clip recall at fixed false-clip rates (``ouie eval --split source``).

Each clip is summed up by its class scores, the maximum over its windows, rounded to
``SCORE_DIGITS`` decimals; every figure is computed from those rounded scores, in integer
units of 10⁻⁶, so it is exact and can be recomputed from the JSON.

**Per-class operating points (the primary figure).** Class scores live on different scales,
so each label c gets its own threshold, calibrated by its own false-clip rate. For a
per-label false rate q, with N non-target clips and k = ⌊q·N⌋:

* t_c(q) is the lowest threshold (on the 10⁻⁶ grid of the scores) at which at most k
  non-target clips have a class-c score ≥ t_c: one unit above the (k+1)-th highest
  non-target class-c score, ties included (so fewer than k may remain), and 0 when k ≥ N;
* a non-target clip is a *false clip* when any of its class scores c is ≥ t_c; a target
  clip is *found* when its own class score is ≥ t_own;
* the union false-clip rate grows with q (every t_c falls or stays), so recall at a
  false-clip rate ≤ r is the recall at the largest q — of the distinct candidates k/N,
  k = 0…N — whose union false-clip rate is ≤ r. q = 0 (every t_c above every non-target
  score) always qualifies.

The scan is exact and needs no grid: a non-target clip i turns false at k ≥ e_i, where
e_i = min over c of the number of non-target clips whose class-c score is ≥ clip i's; with
A false clips allowed, the largest k is the (A+1)-th smallest e_i minus one.

**Balanced recall (beside each per-class point).** Pooled recall counts clips, so the largest
collections decide it (in ../shared one glass collection holds a third of the targets). At
the same thresholds, the balanced recall is the mean, over the cells of target clips of one
source and one label holding at least ``MIN_CELL_CLIPS`` clips, of each cell's recall: every
recording source of every label weighs the same, as in a holdout of a few clips from each
of several sources. Sources are known only where the pool was given them (``groups``).

**One threshold for every class (secondary, ``single_threshold``).** A target clip is found
at t when its own class score is ≥ t, a non-target clip is false when its highest class
score is ≥ t. The threshold reported is the lowest observed score (a target's own-class
score or a non-target's highest score) whose false-clip rate is ≤ r; when none qualifies,
nothing is found at that rate: recall 0 and no threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

#: Clip scores are rounded to this many decimals; thresholds live on the same grid.
SCORE_DIGITS = 6
UNIT: int = 10**SCORE_DIGITS
#: The false-clip rates reported, and the one the per-class recall is given at.
FALSE_CLIP_RATES: tuple[float, ...] = (0.01, 0.02, 0.05)
PER_CLASS_RATE = 0.02
#: A (source, label) cell of target clips counts in the balanced recall from this many clips:
#: a cell of one or two clips would move the mean by its coin flip.
MIN_CELL_CLIPS = 5


def to_units(values: npt.ArrayLike) -> IntArray:
    """Scores (or thresholds) in integer units of 10⁻⁶ (rounded to ``SCORE_DIGITS``)."""
    return np.asarray(np.rint(np.asarray(values, dtype=np.float64) * UNIT), dtype=np.int64)


def from_units(value: int | np.integer) -> float:
    return round(int(value) / UNIT, SCORE_DIGITS)


@dataclass(frozen=True)
class ClipPool:
    """Scores of a set of clips, in units of 10⁻⁶: targets by their own class score,
    non-targets by every class score (columns in ``labels`` order)."""

    labels: tuple[str, ...]
    target_labels: tuple[str, ...]
    target_scores: IntArray  # [n_targets]: own-class score
    non_target_scores: IntArray  # [n_non_targets, n_labels]
    target_groups: tuple[str, ...] = ()  # per target, its source ("" when not given)

    @property
    def n_targets(self) -> int:
        return len(self.target_labels)

    @property
    def n_non_targets(self) -> int:
        return int(self.non_target_scores.shape[0])

    @property
    def non_target_max(self) -> IntArray:
        """Each non-target clip's highest class score."""
        if self.n_non_targets == 0 or not self.labels:
            return np.zeros(self.n_non_targets, dtype=np.int64)
        return np.asarray(self.non_target_scores.max(axis=1), dtype=np.int64)

    def target_columns(self) -> npt.NDArray[np.intp]:
        return np.asarray([self.labels.index(label) for label in self.target_labels], np.intp)


def clip_pool(
    rows: Sequence[tuple[str, bool, Sequence[float]]],
    labels: Sequence[str],
    groups: Sequence[str] | None = None,
) -> ClipPool:
    """``rows``: (label, is_target, class scores in ``labels`` order) per clip; ``groups``:
    each row's recording source, for the balanced recall (none given: one group)."""
    if groups is not None and len(groups) != len(rows):
        raise ValueError(f"{len(groups)} groups for {len(rows)} clips")
    target_labels: list[str] = []
    target_scores: list[float] = []
    target_groups: list[str] = []
    non_target_scores: list[Sequence[float]] = []
    for i, (label, is_target, scores) in enumerate(rows):
        if len(scores) != len(labels):
            raise ValueError(f"a clip of {label!r} has {len(scores)} scores for {len(labels)}")
        if is_target:
            target_labels.append(label)
            target_scores.append(float(scores[labels.index(label)]))
            target_groups.append("" if groups is None else groups[i])
        else:
            non_target_scores.append(scores)
    matrix = (
        to_units(non_target_scores).reshape(len(non_target_scores), len(labels))
        if non_target_scores
        else np.zeros((0, len(labels)), dtype=np.int64)
    )
    return ClipPool(
        tuple(labels), tuple(target_labels), to_units(target_scores), matrix, tuple(target_groups)
    )


def allowed_false_clips(rate: float, n_non_targets: int) -> int:
    """The most false clips a rate ≤ ``rate`` allows among ``n_non_targets`` (floor)."""
    return int(np.floor(rate * n_non_targets + 1e-9))


# --- per-class operating points -------------------------------------------------------------


@dataclass(frozen=True)
class ClassPoint:
    """Per-label thresholds applied to a pool of clips."""

    max_false_clip_rate: float
    per_label_false_rate: float  # q whose thresholds these are
    thresholds: dict[str, float]  # per label, t_c
    found: int
    n_targets: int
    false_clips: int
    n_non_targets: int
    false_clips_by_label: dict[str, int]  # non-target clips with class-c score ≥ t_c
    found_by_label: dict[str, tuple[int, int]]  # (found, clips) per label
    balanced_recall: float | None = None  # mean recall of the cells (module docstring)
    balanced_cells: int = 0  # (source, label) cells of ≥ MIN_CELL_CLIPS target clips

    @property
    def recall(self) -> float | None:
        return self.found / self.n_targets if self.n_targets else None

    @property
    def false_clip_rate(self) -> float | None:
        return self.false_clips / self.n_non_targets if self.n_non_targets else None


def balanced_recall(pool: ClipPool, hit: npt.NDArray[np.bool_]) -> tuple[float | None, int]:
    """The mean recall over the (source, label) cells of ≥ ``MIN_CELL_CLIPS`` target clips,
    and how many cells that is (None, 0 when there is none)."""
    groups = pool.target_groups or ("",) * pool.n_targets
    cells: dict[tuple[str, str], list[bool]] = {}
    for group, label, found in zip(groups, pool.target_labels, hit.tolist(), strict=True):
        cells.setdefault((group, label), []).append(bool(found))
    recalls = [sum(v) / len(v) for v in cells.values() if len(v) >= MIN_CELL_CLIPS]
    return (sum(recalls) / len(recalls), len(recalls)) if recalls else (None, 0)


def class_thresholds(pool: ClipPool, allowed_per_label: int) -> IntArray:
    """t_c for k = ``allowed_per_label``: one unit above the (k+1)-th highest non-target
    class-c score (0 when k ≥ the number of non-target clips)."""
    n = pool.n_non_targets
    if allowed_per_label >= n:
        return np.zeros(len(pool.labels), dtype=np.int64)
    descending = -np.sort(-pool.non_target_scores, axis=0)
    return np.asarray(descending[allowed_per_label] + 1, dtype=np.int64)


def false_clip_onsets(pool: ClipPool) -> IntArray:
    """Per non-target clip, the smallest k at which it is a false clip: the minimum over the
    classes of the number of non-target clips scoring at least as high as it in that class."""
    n = pool.n_non_targets
    if n == 0 or not pool.labels:
        return np.full(n, n, dtype=np.int64)
    ranks = np.empty_like(pool.non_target_scores)
    for column in range(len(pool.labels)):
        scores = pool.non_target_scores[:, column]
        ranks[:, column] = n - np.searchsorted(np.sort(scores), scores, side="left")
    return np.asarray(ranks.min(axis=1), dtype=np.int64)


def largest_allowance(pool: ClipPool, rate: float) -> int | None:
    """The largest k (q = k / N) whose union false-clip rate is ≤ ``rate``; None without
    non-target clips."""
    n = pool.n_non_targets
    if n == 0:
        return None
    allowed = allowed_false_clips(rate, n)
    if allowed >= n:
        return n
    return int(np.sort(false_clip_onsets(pool))[allowed]) - 1


def at_class_thresholds(pool: ClipPool, thresholds: IntArray, rate: float, q: float) -> ClassPoint:
    """``pool`` at the per-label ``thresholds`` (units, ``pool.labels`` order)."""
    columns = pool.target_columns()
    hit = pool.target_scores >= thresholds[columns] if columns.size else np.zeros(0, np.bool_)
    over = pool.non_target_scores >= thresholds[np.newaxis, :]
    names = np.asarray(pool.target_labels, dtype=object)
    found_by_label = {
        label: (int(np.count_nonzero(hit[names == label])), int(np.count_nonzero(names == label)))
        for label in pool.labels
    }
    balanced, cells = balanced_recall(pool, hit)
    return ClassPoint(
        max_false_clip_rate=rate,
        per_label_false_rate=q,
        thresholds={label: from_units(t) for label, t in zip(pool.labels, thresholds, strict=True)},
        found=int(np.count_nonzero(hit)),
        n_targets=pool.n_targets,
        false_clips=int(np.count_nonzero(over.any(axis=1))) if pool.n_non_targets else 0,
        n_non_targets=pool.n_non_targets,
        false_clips_by_label={
            label: int(np.count_nonzero(over[:, i])) for i, label in enumerate(pool.labels)
        },
        found_by_label=found_by_label,
        balanced_recall=balanced,
        balanced_cells=cells,
    )


def class_recall_at_rate(pool: ClipPool, rate: float) -> ClassPoint | None:
    """Recall at a union false-clip rate ≤ ``rate`` with per-label thresholds; None without
    non-target clips (nothing to calibrate on)."""
    k = largest_allowance(pool, rate)
    if k is None:
        return None
    q = k / pool.n_non_targets
    return at_class_thresholds(pool, class_thresholds(pool, k), rate, q)


def at_given_thresholds(
    pool: ClipPool, thresholds: Mapping[str, float], rate: float, q: float
) -> ClassPoint:
    """``pool`` at thresholds chosen elsewhere (e.g. the pooled ones)."""
    units = to_units([thresholds[label] for label in pool.labels])
    return at_class_thresholds(pool, units, rate, q)


# --- one threshold for every class (secondary) -----------------------------------------------


@dataclass(frozen=True)
class OperatingPoint:
    """One threshold applied to a pool of clips (None: a threshold above every score)."""

    max_false_clip_rate: float
    threshold: float | None
    found: int
    n_targets: int
    false_clips: int
    n_non_targets: int

    @property
    def recall(self) -> float | None:
        return self.found / self.n_targets if self.n_targets else None

    @property
    def false_clip_rate(self) -> float | None:
        return self.false_clips / self.n_non_targets if self.n_non_targets else None


def lowest_threshold(pool: ClipPool, rate: float) -> float | None:
    """The lowest observed score at which the single-threshold false-clip rate is ≤ ``rate``;
    None when the pool lacks targets or non-targets, or when no observed score qualifies."""
    if pool.n_targets == 0 or pool.n_non_targets == 0:
        return None
    allowed = allowed_false_clips(rate, pool.n_non_targets)
    maxima = pool.non_target_max
    candidates = np.unique(np.concatenate([pool.target_scores, maxima]))
    descending = np.sort(maxima)[::-1]
    # false clips at t = non-targets scoring ≥ t; it fits when t exceeds the (allowed+1)-th
    # highest non-target score.
    if allowed >= descending.size:
        return from_units(candidates[0])
    above = candidates[candidates > descending[allowed]]
    return from_units(above[0]) if above.size else None


def at_threshold(pool: ClipPool, threshold: float | None, rate: float) -> OperatingPoint:
    """``pool`` at one ``threshold`` for every class (None: nothing found, nothing false)."""
    if threshold is None:
        found = false = 0
    else:
        t = int(to_units(threshold))
        found = int(np.count_nonzero(pool.target_scores >= t))
        false = int(np.count_nonzero(pool.non_target_max >= t))
    return OperatingPoint(rate, threshold, found, pool.n_targets, false, pool.n_non_targets)


def recall_at_rate(pool: ClipPool, rate: float) -> OperatingPoint:
    """The largest single-threshold recall at a false-clip rate ≤ ``rate``, and its threshold."""
    return at_threshold(pool, lowest_threshold(pool, rate), rate)


def class_recall(pool: ClipPool, threshold: float | None) -> dict[str, tuple[int, int]]:
    """(found, clips) per label at one ``threshold`` for every class."""
    out: dict[str, tuple[int, int]] = {}
    names = np.asarray(pool.target_labels, dtype=object)
    t = None if threshold is None else int(to_units(threshold))
    for label in pool.labels:
        mine = pool.target_scores[names == label]
        found = 0 if t is None else int(np.count_nonzero(mine >= t))
        out[label] = (found, int(mine.size))
    return out
