"""A linear head on the AudioSet teachers' embeddings, and the window labels it learns from.

YAMNet's 1024-d and mn04's 512-d embeddings of a window, z-scored and concatenated, go
through one logistic layer per ouie label. Trained on real windows (``ouie.train.teachers``
cache), it is the teacher whose soft scores ouie-compact is distilled from, and the confirm
stage of the cascade when the teachers are installed on a node.

Window labels come from clip labels (weak labels), made strong enough for windows:

* every window of a non-target clip (speech included) is a negative for every label;
* a window of a target clip is a positive for the clip's label when it holds the clip's
  event: its loudest 10 ms frame is within ``ACTIVE_DB`` of the clip's loudest one (the
  frames read from the window's log-mel patch); other windows of a target clip are left out
  (``weight`` 0), neither positive nor negative, since they may hold the event's tail;
* every window of an ``UNLABELLED`` clip (a game package's other effects, heard only through
  the teachers' soft targets) is left out too: it may hold a shot nobody labelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ouie.core.labels import EVENT_LABELS

FloatArray = npt.NDArray[np.float32]

ACTIVE_DB = 10.0
# A clip with no label of its own: distillation data for the teachers' soft targets only,
# never a hard negative and never a mixing background.
UNLABELLED = "unlabelled"


@dataclass(frozen=True)
class WindowLabels:
    targets: FloatArray  # [n, 8] 0/1
    weights: FloatArray  # [n] 0 for windows of target clips that do not hold the event


def patch_peak_db(patches: npt.NDArray[np.floating]) -> FloatArray:
    """The level (dB, relative) of each window's loudest 10 ms frame, from its log-mel patch
    (YAMNet's ln(mel magnitude + 0.001)): 20·log10 of the frame's summed mel magnitude."""
    magnitude = np.exp(np.asarray(patches, dtype=np.float32)).sum(axis=2).max(axis=1)
    level: FloatArray = (20.0 * np.log10(magnitude + 1e-9)).astype(np.float32)
    return level


def label_windows(
    clip_labels: list[str], clip_of_window: npt.NDArray[np.int32], peak_db: FloatArray
) -> WindowLabels:
    n = len(clip_of_window)
    targets = np.zeros((n, len(EVENT_LABELS)), dtype=np.float32)
    weights = np.ones(n, dtype=np.float32)
    column = {str(label): i for i, label in enumerate(EVENT_LABELS)}
    clip_peak = np.full(len(clip_labels), -np.inf, dtype=np.float32)
    np.maximum.at(clip_peak, clip_of_window, peak_db)
    for w in range(n):
        clip = int(clip_of_window[w])
        label = clip_labels[clip]
        if label == UNLABELLED:
            weights[w] = 0.0
        elif label in column:
            if peak_db[w] >= clip_peak[clip] - ACTIVE_DB:
                targets[w, column[label]] = 1.0
            else:
                weights[w] = 0.0
    return WindowLabels(targets, weights)


@dataclass
class LinearHead:
    """``sigmoid(((x - mean) / std) @ weight + bias)`` per label; numpy only at run time."""

    mean: FloatArray
    std: FloatArray
    weight: FloatArray  # [d, 8]
    bias: FloatArray  # [8]

    def logits(self, features: FloatArray) -> FloatArray:
        z = (np.asarray(features, dtype=np.float32) - self.mean) / self.std
        out: FloatArray = (z @ self.weight + self.bias).astype(np.float32)
        return out

    def __call__(self, features: FloatArray) -> FloatArray:
        out: FloatArray = (1.0 / (1.0 + np.exp(-self.logits(features)))).astype(np.float32)
        return out

    def save(self, path: Path) -> None:
        np.savez(path, mean=self.mean, std=self.std, weight=self.weight, bias=self.bias)

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        with np.load(path) as data:
            return cls(
                data["mean"].astype(np.float32),
                data["std"].astype(np.float32),
                data["weight"].astype(np.float32),
                data["bias"].astype(np.float32),
            )


def fit_head(
    features: FloatArray,
    labels: WindowLabels,
    l2: float = 1e-3,
    epochs: int = 30,
    seed: int = 0,
) -> LinearHead:
    """Logistic regression per label (AdamW, full-batch-ish minibatches), positives
    re-weighted so each label's positives weigh as much as its negatives (capped at 50×)."""
    import torch

    torch.manual_seed(seed)
    x = np.asarray(features, dtype=np.float32)
    keep = labels.weights > 0
    mean = x[keep].mean(axis=0)
    std = x[keep].std(axis=0) + 1e-3
    z = torch.from_numpy((x[keep] - mean) / std)
    y = torch.from_numpy(labels.targets[keep])
    positives = y.sum(dim=0)
    pos_weight = torch.clamp((len(y) - positives) / torch.clamp(positives, min=1.0), max=50.0)
    linear = torch.nn.Linear(z.shape[1], y.shape[1])
    optimiser = torch.optim.AdamW(linear.parameters(), lr=1e-2, weight_decay=l2)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(z), generator=generator)
        for start in range(0, len(z), 512):
            batch = order[start : start + 512]
            loss = loss_fn(linear(z[batch]), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return LinearHead(
        mean.astype(np.float32),
        std.astype(np.float32),
        linear.weight.detach().numpy().T.copy(),
        linear.bias.detach().numpy().copy(),
    )
