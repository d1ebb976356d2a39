"""How well does a threshold rule carry to a source it was not chosen on?

    python scripts/threshold_rule_check.py LOSO.json     # an `ouie eval --split source` JSON

For every source of the JSON's clip scores (each clip already scored by a build that never
heard its source), per-label thresholds are chosen by a rule on the *other* sources' clips
and applied to this one; the pooled result is a nested leave-one-source-out figure, printed
beside the same rule chosen and measured on every clip (in sample). Scores are clip maxima,
and "an event" is a clip maximum at or over the threshold (the node's event logic with its
defaults, less the speech guard), so the rates approximate `ouie eval tune`'s. Rules:

- ``all-72``: per label, the lowest grid threshold at which non-target clips over it make at
  most 72 a day of all non-target audio (the shipped rule's shape);
- ``street-72``: the same on street non-targets only (background, ambience, speech);
- ``greedy-2%``: lower one label at a time, taking the step that finds the most targets per
  false clip, while at most 2 % of the non-target clips are false.

docs/eval.md (session 10) gives the figures for the shipped recipe and for YAMNet.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ouie.core.labels import EVENT_LABELS
from ouie.eval.alarm_tune import GRID, lowest_meeting
from ouie.eval.mixtures import AMBIENCE_LABELS, SPEECH_LABELS

LABELS = [label.value for label in EVENT_LABELS]
Mask = npt.NDArray[np.bool_]


class Clips:
    def __init__(self, path: Path) -> None:
        rows = json.loads(path.read_text(encoding="utf-8"))["clips"]
        self.source = np.array([r["source"] for r in rows])
        self.label = np.array([r["label"] for r in rows])
        self.scores = np.array([[r["scores"][label] for label in LABELS] for r in rows])
        self.seconds = np.array([r["duration_s"] for r in rows])
        self.target = np.isin(self.label, LABELS)
        self.street = np.isin(self.label, sorted(AMBIENCE_LABELS | SPEECH_LABELS))
        own = [LABELS.index(label) if label in LABELS else 0 for label in self.label]
        self.own = np.array(own, dtype=int)


Rule = Callable[[Clips, Mask], npt.NDArray[np.float64]]


def rate_rule(street_only: bool, per_day: float = 72.0) -> Rule:
    def choose(c: Clips, rows: Mask) -> npt.NDArray[np.float64]:
        negatives = rows & ~c.target & (c.street if street_only else True)
        seconds = float(c.seconds[negatives].sum())
        chosen = np.full(len(LABELS), GRID[-1])
        for j in range(len(LABELS)):
            counts = [int((c.scores[negatives, j] >= t).sum()) for t in GRID]
            index = lowest_meeting(counts, seconds, per_day)
            if index is not None:
                chosen[j] = GRID[index]
        return chosen

    return choose


def greedy_rule(rate: float) -> Rule:
    grid = np.array(GRID)

    def choose(c: Clips, rows: Mask) -> npt.NDArray[np.float64]:
        negatives = c.scores[rows & ~c.target]
        targets = rows & c.target
        own_scores = c.scores[targets, c.own[targets]]
        own = c.own[targets]
        budget = math.floor(rate * len(negatives))
        at = np.full(len(LABELS), len(GRID) - 1)

        def state(index: npt.NDArray[np.int_]) -> tuple[int, int]:
            t = grid[index]
            return int((negatives >= t).any(axis=1).sum()), int((own_scores >= t[own]).sum())

        false, found = state(at)
        while True:
            best: tuple[float, int, int, int, int] | None = None
            for j in range(len(LABELS)):
                for k in range(at[j] - 1, -1, -1):
                    trial = at.copy()
                    trial[j] = k
                    f, n = state(trial)
                    if f > budget:
                        break
                    if n > found:
                        ratio = (n - found) / (f - false + 0.5)
                        if best is None or ratio > best[0]:
                            best = (ratio, j, k, f, n)
            if best is None:
                return np.asarray(grid[at], dtype=np.float64)
            _, j, k, false, found = best
            at[j] = k

    return choose


def apply(c: Clips, rows: Mask, thresholds: npt.NDArray[np.float64]) -> npt.NDArray[np.int_]:
    """Found targets, targets, false non-target clips, non-target clips."""
    targets, negatives = rows & c.target, rows & ~c.target
    found = int((c.scores[targets, c.own[targets]] >= thresholds[c.own[targets]]).sum())
    false = int((c.scores[negatives] >= thresholds).any(axis=1).sum())
    return np.array([found, int(targets.sum()), false, int(negatives.sum())])


def main(path: Path) -> None:
    c = Clips(path)
    every = np.ones(len(c.label), dtype=bool)
    rules = {
        "all-72": rate_rule(street_only=False),
        "street-72": rate_rule(street_only=True),
        "greedy-2%": greedy_rule(0.02),
    }
    for name, rule in rules.items():
        nested = sum((apply(c, c.source == s, rule(c, c.source != s)) for s in set(c.source)),
                     np.zeros(4, dtype=int))  # fmt: skip
        alone = apply(c, every, rule(c, every))
        print(
            f"{name:10s} nested: found {nested[0] / nested[1]:.3f}, false clips "
            f"{nested[2] / nested[3]:.3f} | in sample: found {alone[0] / alone[1]:.3f}, "
            f"false clips {alone[2] / alone[3]:.3f}"
        )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
