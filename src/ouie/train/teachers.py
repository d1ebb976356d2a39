"""The AudioSet teachers (YAMNet, mn04) on ouie's window grid, and their outputs cached.

ouie-compact is distilled from two third-party taggers that generalise across recording
sources far better than anything trained on our ~1,300 clips (docs/benchmarks.md). This
module runs both on the student's own windows — 15,600 samples (0.975 s) at 16 kHz, the
node's grid — and returns, per window:

* YAMNet's 521 AudioSet scores and its 1024-d embedding (the pooled layer before its
  classifier, read from the int8 interpreter's preserved tensors and dequantised);
* mn04's 527 scores and its 512-d hidden layer (the classifier's Hardswish output), from
  the released PyTorch weights (``train`` extra).

mn04 is fed the same 16 kHz window upsampled to its 32 kHz input rate, so the teacher sees
exactly what the student sees, on real clips and on augmented ones alike.

``python -m ouie.train.teachers --data DIR [--data DIR ...] --cache DIR`` writes one
``.npz`` per dataset (windows' log-mel patches for the student, and the teacher outputs) to
a cache outside the repository; training and the source-disjoint analysis read it from there.
Model files come from the model directory (``OUIE_MODEL_DIR``) or ``--models``, checked by
sha256; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from ouie.eval.dataset import Clip, load_dataset
from ouie.node.audio_io import read_audio, to_rate
from ouie.node.frontends import mn04 as mn04_frontend
from ouie.node.frontends import yamnet as frontend
from ouie.node.resample import resample

SAMPLE_RATE = frontend.SAMPLE_RATE
WINDOW = frontend.PATCH_SAMPLES
HOP = SAMPLE_RATE // 4  # 0.25 s, the node's default hop for ouie-compact
MN04_RATE = 32000
MN04_WINDOW = MN04_RATE  # 1 s: the 0.975 s window, upsampled, zero-padded at the end
YAMNET_FILE = "yamnet_spectra_in.tflite"
YAMNET_CLASSES = "yamnet_class_map.csv"
MN04_FILE = "mn04_as_mAP_432.pt"
MN04_CLASSES = "audioset_class_labels_indices.csv"
YAMNET_DIM = 1024
MN04_DIM = 512

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class TeacherOutputs:
    yamnet_scores: FloatArray  # [n, 521]
    yamnet_embedding: FloatArray  # [n, 1024]
    mn04_scores: FloatArray  # [n, 527]
    mn04_embedding: FloatArray  # [n, 512]


class Teachers:
    """YAMNet (TFLite) and mn04 (torch) on windows ``[n, 15600]`` at 16 kHz."""

    def __init__(self, models: Path, threads: int = 1) -> None:
        from ouie.models.store import resolve, short_digest
        from ouie.train.compact import YamnetEmbeddings
        from ouie.train.mn04_torch import build_mn04

        yamnet_path = resolve(YAMNET_FILE, models)
        self.yamnet = YamnetEmbeddings(yamnet_path, threads, with_scores=True)
        mn04_path = models / MN04_FILE
        if not mn04_path.is_file():
            raise FileNotFoundError(f"{mn04_path} not found (the mn04 teacher's weights)")
        torch.set_num_threads(threads)
        self.mn04 = build_mn04(mn04_path)
        self._mn04_hidden: list[torch.Tensor] = []
        self.mn04.classifier[3].register_forward_hook(
            lambda _m, _i, out: self._mn04_hidden.append(out.detach())
        )
        self.ids = (
            f"yamnet-tflite@{short_digest(yamnet_path)}",
            f"mn04@{hashlib.sha256(mn04_path.read_bytes()).hexdigest()[:8]}",
        )

    def mn04_inputs(self, windows: FloatArray) -> FloatArray:
        up = np.stack([resample(w, SAMPLE_RATE, MN04_RATE) for w in windows]).astype(np.float32)
        padded = np.zeros((len(windows), MN04_WINDOW), dtype=np.float32)
        padded[:, : min(MN04_WINDOW, up.shape[1])] = up[:, :MN04_WINDOW]
        return mn04_frontend.log_mel_batch(padded)[:, None, :, :]

    def __call__(self, windows: FloatArray, patches: FloatArray | None = None) -> TeacherOutputs:
        windows = np.asarray(windows, dtype=np.float32)
        if patches is None:
            patches = frontend.window_patches(windows, "teacher")
        yam_emb, yam_scores = self.yamnet.both(patches)
        mn_scores = np.empty((len(windows), 527), dtype=np.float32)
        mn_emb = np.empty((len(windows), MN04_DIM), dtype=np.float32)
        for start in range(0, len(windows), 64):
            chunk = self.mn04_inputs(windows[start : start + 64])
            self._mn04_hidden.clear()
            with torch.inference_mode():
                logits = self.mn04(torch.from_numpy(chunk))
            mn_scores[start : start + len(chunk)] = torch.sigmoid(logits).numpy()
            mn_emb[start : start + len(chunk)] = self._mn04_hidden[0].numpy()
        return TeacherOutputs(yam_scores, yam_emb, mn_scores, mn_emb)


def clip_windows(audio: FloatArray) -> FloatArray:
    """The node's windows of a clip at 16 kHz: 0.975 s every 0.25 s; a short clip is padded."""
    if len(audio) < WINDOW:
        audio = np.concatenate([audio, np.zeros(WINDOW - len(audio), dtype=np.float32)])
    starts = range(0, len(audio) - WINDOW + 1, HOP)
    return np.stack([audio[s : s + WINDOW] for s in starts]).astype(np.float32)


def load_clip(clip: Clip) -> FloatArray:
    audio, rate = read_audio(clip.path)
    return to_rate(audio, rate, SAMPLE_RATE).astype(np.float32)


@dataclass
class TeacherCache:
    """Every window of every clip of a dataset, with the teachers' outputs (one ``.npz``)."""

    files: list[str]  # per clip, as in labels.csv
    labels: list[str]
    sources: list[str]  # source_repo per clip
    clip_of_window: npt.NDArray[np.int32]
    patches: npt.NDArray[np.float16]  # [windows, 96, 64]
    outputs: TeacherOutputs
    teacher_ids: tuple[str, str]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(".tmp.npz")
        np.savez(
            scratch,
            files=np.array(self.files),
            labels=np.array(self.labels),
            sources=np.array(self.sources),
            clip_of_window=self.clip_of_window,
            patches=self.patches,
            yamnet_scores=self.outputs.yamnet_scores.astype(np.float16),
            yamnet_embedding=self.outputs.yamnet_embedding.astype(np.float16),
            mn04_scores=self.outputs.mn04_scores.astype(np.float16),
            mn04_embedding=self.outputs.mn04_embedding.astype(np.float16),
            teacher_ids=np.array(self.teacher_ids),
        )
        scratch.replace(path)

    @classmethod
    def load(cls, path: Path) -> TeacherCache:
        with np.load(path) as data:
            ids = [str(x) for x in data["teacher_ids"]]
            return cls(
                files=[str(x) for x in data["files"]],
                labels=[str(x) for x in data["labels"]],
                sources=[str(x) for x in data["sources"]],
                clip_of_window=data["clip_of_window"],
                patches=data["patches"],
                outputs=TeacherOutputs(
                    data["yamnet_scores"].astype(np.float32),
                    data["yamnet_embedding"].astype(np.float32),
                    data["mn04_scores"].astype(np.float32),
                    data["mn04_embedding"].astype(np.float32),
                ),
                teacher_ids=(ids[0], ids[1]),
            )


def build_cache(directory: Path, teachers: Teachers, log: bool = True) -> TeacherCache:
    clips = load_dataset(directory)
    patches: list[npt.NDArray[np.float16]] = []
    outs: list[TeacherOutputs] = []
    owner: list[npt.NDArray[np.int32]] = []
    started = time.perf_counter()
    for index, clip in enumerate(clips):
        windows = clip_windows(load_clip(clip))
        clip_patches = frontend.window_patches(windows, "teacher")
        outs.append(teachers(windows, clip_patches))
        patches.append(clip_patches.astype(np.float16))
        owner.append(np.full(len(windows), index, dtype=np.int32))
        if log and (index + 1) % 100 == 0:
            print(
                f"  {directory.name}: {index + 1}/{len(clips)} clips "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    return TeacherCache(
        files=[c.file for c in clips],
        labels=[c.label for c in clips],
        sources=[c.source_repo for c in clips],
        clip_of_window=np.concatenate(owner),
        patches=np.concatenate(patches),
        outputs=TeacherOutputs(
            *(np.concatenate([getattr(o, f) for o in outs]) for f in TeacherOutputs.__annotations__)
        ),
        teacher_ids=teachers.ids,
    )


def cache_path(cache_dir: Path, data_dir: Path) -> Path:
    return cache_dir / f"{data_dir.resolve().name}.npz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ouie.train.teachers", description=__doc__)
    parser.add_argument("--data", type=Path, action="append", default=[])
    parser.add_argument(
        "--synthetic",
        type=Path,
        default=None,
        help="also write generated car alarms, spray cans, crashes, sirens and backgrounds "
        "here (ouie.train.synth.write_dataset) and cache them like a dataset",
    )
    parser.add_argument("--synthetic-per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=77)
    parser.add_argument("--cache", type=Path, required=True, help="outside the repository")
    parser.add_argument("--models", type=Path, default=None, help="default: OUIE_MODEL_DIR")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    from ouie.models.store import model_dir

    if args.synthetic is not None:
        from ouie.train.synth import write_dataset

        args.data.append(write_dataset(args.synthetic, args.synthetic_per_class, args.seed))
    if not args.data:
        parser.error("give --data DIR and/or --synthetic DIR")
    teachers = Teachers(args.models or model_dir(), args.threads)
    for data in args.data:
        started = time.perf_counter()
        cache = build_cache(data, teachers)
        target = cache_path(args.cache, data)
        cache.save(target)
        print(
            f"{target}: {len(cache.files)} clips, {len(cache.clip_of_window)} windows "
            f"({time.perf_counter() - started:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
