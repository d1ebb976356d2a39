"""A made-up teacher cache and class lists, small enough for a distillation in seconds."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ouie.node.classifiers.audioset_map import AUDIOSET_MIDS
from ouie.train.teacher_head import UNLABELLED
from ouie.train.teachers import TeacherCache, TeacherOutputs


def class_csv(path: Path, n: int) -> None:
    mids = [mid for group in AUDIOSET_MIDS.values() for mid in group]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "mid", "display_name"])
        for i in range(n):
            mid = mids[i] if i < len(mids) else f"/m/fake{i}"
            writer.writerow([i, mid, f"class {i}"])


def tiny_cache(path: Path, rng: np.random.Generator, unlabelled: bool = False) -> None:
    clips = [
        ("a/g1.flac", "gunshot", "src/one"),
        ("a/n1.flac", "rain", "src/one"),
        ("b/g2.flac", "gunshot", "src/two"),
        ("b/n2.flac", "speech", "src/two"),
    ]
    if unlabelled:
        clips.append(("c/u1.flac", UNLABELLED, "debian:pkg"))
    per_clip = 6
    n = per_clip * len(clips)
    patches = rng.normal(-4.0, 1.0, (n, 96, 64)).astype(np.float16)
    yamnet = np.zeros((n, 521), np.float32)
    yamnet[:per_clip, 0] = 0.9  # the first mapped mid is a gunshot one
    TeacherCache(
        files=[c[0] for c in clips],
        labels=[c[1] for c in clips],
        sources=[c[2] for c in clips],
        clip_of_window=np.repeat(np.arange(len(clips), dtype=np.int32), per_clip),
        patches=patches,
        outputs=TeacherOutputs(
            yamnet,
            rng.standard_normal((n, 1024)).astype(np.float32),
            np.zeros((n, 527), np.float32),
            rng.standard_normal((n, 512)).astype(np.float32),
        ),
        teacher_ids=("yamnet-tflite@test", "mn04@test"),
    ).save(path)
