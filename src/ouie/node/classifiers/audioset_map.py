"""Mapping from AudioSet classes to ouie's event labels, for the AudioSet-trained backends.

Keyed by AudioSet machine id (``mid``), which is stable across label files (YAMNet's 521
and EfficientAT's 527 classes name the same mids). A ouie label's score is the maximum of
its member classes' scores. Parents too broad to mean the event (``Glass`` also covers
clinking glasses, ``Alarm`` covers alarm clocks) are deliberately left out. Speech classes
are never mapped: no backend can emit them.

| ouie label | AudioSet classes |
|---|---|
| gunshot | Gunshot, gunfire; Machine gun; Fusillade; Cap gun |
| explosion | Explosion; Fireworks; Firecracker; Boom |
| glass_breaking | Shatter |
| scream | Screaming |
| vehicle_crash | Smash, crash; Skidding; Tire squeal |
| siren | Siren; Civil defense siren; Police car, Ambulance, Fire engine (siren); |
|       | Emergency vehicle |
| car_alarm | Car alarm |
| spray_can | Spray |
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ouie.core.labels import EVENT_LABELS, EventLabel

AUDIOSET_MIDS: dict[EventLabel, tuple[str, ...]] = {
    EventLabel.GUNSHOT: ("/m/032s66", "/m/04zjc", "/m/02z32qm", "/m/073cg4"),
    EventLabel.EXPLOSION: ("/m/014zdl", "/m/0g6b5", "/g/122z_qxw", "/m/07qqyl4"),
    EventLabel.GLASS_BREAKING: ("/m/07rn7sz",),
    EventLabel.SCREAM: ("/m/03qc9zr",),
    EventLabel.VEHICLE_CRASH: ("/m/07pjjrj", "/m/07rknqz", "/m/0h9mv"),
    EventLabel.SIREN: ("/m/03kmc9", "/m/0dgbq", "/m/04qvtq", "/m/012n7d", "/m/012ndj", "/m/03j1ly"),
    EventLabel.CAR_ALARM: ("/m/02mfyn",),
    EventLabel.SPRAY_CAN: ("/m/07qlf79",),
}

#: AudioSet speech classes (Speech and its children, babble). Used only by tests and the
#: privacy report to show that no mapped label overlaps them.
SPEECH_MIDS: frozenset[str] = frozenset(
    {"/m/09x0r", "/m/05zppz", "/m/02zsn", "/m/0ytgt", "/m/01h8n0", "/m/02qldy", "/m/07qfr4h"}
)


def read_class_mids(class_csv: Path) -> list[str]:
    """The ``mid`` column of an AudioSet class list (``index,mid,display_name``), in order."""
    with class_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["mid"] for row in sorted(rows, key=lambda r: int(r["index"]))]


class AudioSetMapper:
    """Reduces ``[n, n_audioset]`` scores to ``[n, 8]`` ouie scores (max over members)."""

    def __init__(self, class_mids: list[str]) -> None:
        position = {mid: i for i, mid in enumerate(class_mids)}
        self.member_indices: list[npt.NDArray[np.int64]] = []
        for label in EVENT_LABELS:
            members = [position[m] for m in AUDIOSET_MIDS[label] if m in position]
            if not members:
                raise ValueError(f"no AudioSet class of {label.value} in this class list")
            self.member_indices.append(np.asarray(members, dtype=np.int64))
        self.n_classes = len(class_mids)

    def __call__(self, scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if scores.ndim != 2 or scores.shape[1] != self.n_classes:
            raise ValueError(f"expected [n, {self.n_classes}] scores, got {scores.shape}")
        out = np.empty((scores.shape[0], len(EVENT_LABELS)), dtype=np.float32)
        for column, members in enumerate(self.member_indices):
            out[:, column] = scores[:, members].max(axis=1)
        return out


#: Each teacher's score is clamped to [TEACHER_CLAMP, 1 - TEACHER_CLAMP] before its logit is
#: taken, so that a teacher's 10⁻⁹ does not outvote the other's 0.9 (1e-3 … 1e-6 gave the
#: same source-disjoint figures on the cached windows, docs/eval.md, session 15).
TEACHER_CLAMP = 1e-4


def logit_mean(scores: list[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
    """The teachers' mapped scores combined as the mean of their logits (the geometric mean
    of their odds): a label both teachers lean towards outranks one that a single teacher is
    sure of and the other rules out, which the arithmetic mean ranks alike."""
    if not scores:
        raise ValueError("no teacher scores to combine")
    total = np.zeros_like(scores[0], dtype=np.float64)
    for s in scores:
        p = np.clip(np.asarray(s, dtype=np.float64), TEACHER_CLAMP, 1.0 - TEACHER_CLAMP)
        total += np.log(p / (1.0 - p))
    out: npt.NDArray[np.float32] = (1.0 / (1.0 + np.exp(-total / len(scores)))).astype(np.float32)
    return out
