"""Train ouie-compact, the default classifier, and export it for the node.

    python -m ouie.train.compact --data ../shared/data/dev --out src/ouie/models_bundled/

Trains on folds 1–4 of the dataset only (fold 0 stays held out), exports
``ouie_compact.onnx`` (input ``logmel`` [batch, 96, 64] from ``ouie.node.frontends.yamnet``,
output ``scores`` [batch, 8] sigmoid scores in ``EVENT_LABELS`` order) with its
``ouie_compact.sha256``, then scores the held-out fold through the runtime backend and
writes ``DATA_CARD.md`` with the figures (``ouie.train.compact_report``).

The network is a small plain CNN: per-band normalisation, four strided 3×3/5×5
convolutions (16-32-64-128 channels), mean over frequency, mean and max over time, one
linear layer — about 100 k parameters and 0.3 ms per patch on one core. Plain strided
convolutions were chosen over depthwise-separable ones after measuring both here: with the
same accuracy budget they train 3–4× faster on CPU and run as fast in onnxruntime.

Training data: balanced positive windows per class (real clips, plus synthetic car alarms,
spray cans, crashes and sirens from ``ouie.train.synth``) and negatives (speech, other
sounds, backgrounds), augmented and turned into log-mel patches once
(``ouie.train.compact_data``). When YAMNet's model file is at hand, a training-only
auxiliary head also regresses YAMNet's embedding of every window (distillation). Measured
on fold 4 (training on 1–3), distillation together with a larger share of negatives cut
the windows that fire on ESC-50 non-target clips from 17 % to 6–7 % and on background
clips from 2–5 % to 0.5 %, for 70 % instead of 75 % of target clips detected.

Needs the ``train`` extra (torch, onnx). Seeded; on one CPU thread with deterministic
algorithms a run is reproducible on the same machine and library versions.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.eval.dataset import Clip, load_dataset, select_folds
from ouie.node.classifiers.compact import model_id_for
from ouie.node.frontends import yamnet as frontend
from ouie.train import compact_data, compact_report
from ouie.train.onnx_export import export_checked

MODEL_NAME = "ouie_compact.onnx"
DIGEST_NAME = "ouie_compact.sha256"
CARD_NAME = "DATA_CARD.md"
INPUT_NAME = "logmel"
OUTPUT_NAME = "scores"
TOLERANCE = 1e-4  # largest allowed |onnxruntime − torch| on the check batch
YAMNET_FILE = "yamnet_spectra_in.tflite"
EMBEDDING_DIM = 1024


class PcenChannel(nn.Module):
    """Per-channel energy normalisation of a log-mel patch ``[batch, time, bands]``.

    E = exp(logmel) − offset (the mel magnitudes back); M is E smoothed over time by a
    first-order filter, M[t] = (1 − s)·M[t − 1] + s·E[t], started from the patch's mean per
    band (a patch is all the context the node's model gets); PCEN = (E / (ε + M)^α + δ)^r − δ^r.
    The filter is written out as a fixed ``[time, time]`` matrix so that the exported ONNX
    graph is a plain MatMul. Defaults are the paper's (α 0.98, δ 2, r 0.5) with a 0.4 s time
    constant at the frontend's 10 ms hop.
    """

    def __init__(
        self,
        frames: int = frontend.PATCH_FRAMES,
        time_constant_s: float = 0.4,
        hop_s: float = frontend.HOP / frontend.SAMPLE_RATE,
        alpha: float = 0.98,
        delta: float = 2.0,
        root: float = 0.5,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        s = 1.0 - math.exp(-hop_s / time_constant_s)
        t = torch.arange(frames, dtype=torch.float64)
        lag = t[:, None] - t[None, :]
        smoother = torch.where(lag >= 0, s * (1.0 - s) ** lag.clamp(min=0), torch.zeros(()))
        self.smoother: torch.Tensor  # [time, time]
        self.initial: torch.Tensor  # [time]: the weight of the starting level
        self.register_buffer("smoother", smoother.float())
        self.register_buffer("initial", ((1.0 - s) ** (t + 1)).float())
        self.alpha, self.delta, self.root, self.eps = alpha, delta, root, eps

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        energy = torch.clamp(torch.exp(patches) - frontend.LOG_OFFSET, min=0.0)
        start = energy.mean(dim=1, keepdim=True)  # [batch, 1, bands]
        smooth = torch.matmul(self.smoother, energy) + self.initial[None, :, None] * start
        gain = (self.eps + smooth) ** self.alpha
        out: torch.Tensor = (energy / gain + self.delta) ** self.root - self.delta**self.root
        return out


class CompactNet(nn.Module):
    """Log-mel patch ``[batch, 96, 64]`` → logits ``[batch, 8]``.

    With ``aux_outputs`` > 0 a second linear head on the same pooled features regresses the
    teacher's embedding during training (distillation); it is not part of the exported graph.

    With ``channel_norm`` the network also sees the patch with each band's mean over the
    patch removed (a second input channel): the recording chain's gain and EQ are a constant
    per band over a second, so that channel is blind to them, and to steady background.

    With ``pcen`` it also sees the patch's per-channel energy normalisation (one more input
    channel, ``PcenChannel``): each band divided by its own smoothed recent level (an
    automatic gain control per band), then compressed. Far-field and noisy recordings differ
    from close ones mostly in level and steady background; PCEN keeps the onsets and quiets
    both (Lostanlen et al., "Per-channel energy normalization: why and how", 2019).
    """

    def __init__(
        self,
        widths: tuple[int, int, int, int] = (16, 32, 64, 128),
        aux_outputs: int = 0,
        channel_norm: bool = False,
        pcen: bool = False,
    ) -> None:
        super().__init__()
        self.band_norm = nn.BatchNorm1d(frontend.N_MELS)
        self.channel_norm = channel_norm
        self.pcen = PcenChannel() if pcen else None
        channels = 1 + int(channel_norm) + int(pcen)
        layers: list[nn.Module] = []
        specs: list[tuple[int, int, int, int | tuple[int, int]]] = [
            (channels, widths[0], 5, 2),
            (widths[0], widths[1], 3, 2),
            (widths[1], widths[2], 3, 2),
            (widths[2], widths[3], 3, (2, 1)),  # keep the frequency axis from here on
        ]
        for c_in, c_out, kernel, stride in specs:
            layers += [
                nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(2 * widths[3], len(EVENT_LABELS))
        self.aux = nn.Linear(2 * widths[3], aux_outputs) if aux_outputs else None

    def features(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.band_norm(patches.transpose(1, 2)).transpose(1, 2).unsqueeze(1)
        if self.channel_norm:
            centred = patches - patches.mean(dim=1, keepdim=True)  # per band, over time
            x = torch.cat([x, centred.unsqueeze(1)], dim=1)
        if self.pcen is not None:
            x = torch.cat([x, self.pcen(patches).unsqueeze(1)], dim=1)
        x = self.body(x).mean(dim=3)  # [batch, channels, time]
        pooled: torch.Tensor = self.dropout(torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1))
        return pooled

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features(patches))
        return logits

    def forward_with_aux(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.aux is None:
            raise RuntimeError("CompactNet was built without an auxiliary head")
        pooled = self.features(patches)
        return self.head(pooled), self.aux(pooled)

    def exported_parameters(self) -> int:
        """Parameters in the exported graph (the auxiliary head is training-only)."""
        aux = sum(int(p.numel()) for p in self.aux.parameters()) if self.aux is not None else 0
        return sum(int(p.numel()) for p in self.parameters()) - aux


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


#: Operating-point calibration baked into the exported model: score = sigmoid(logit + offset),
#: the offset moving the threshold given here to 0.5, the node's default. Empty on purpose.
#: Tried: thresholds chosen on fold 4 with models trained on folds 1–3 (clip-level F1 best
#: at ≈0.25 for explosion, 0.35–0.45 for gunshot). On held-out fold 0 that raised explosion
#: recall from 0.36 to 0.86 and gunshot from 0.51 to 0.60, but windows firing on background
#: went from 0.9 % to 11.5 % (SESA street clips and a rain loop, whose explosion scores sit
#: at 0.2–0.35, crossed the shifted threshold) and two speech clips fired. False alarms on
#: street background and speech matter more here, so the model ships uncalibrated;
#: per-label thresholds belong in the node config.
CALIBRATION_THRESHOLDS: dict[EventLabel, float] = {}


def logit_offsets() -> list[float]:
    return [
        -_logit(CALIBRATION_THRESHOLDS[label]) if label in CALIBRATION_THRESHOLDS else 0.0
        for label in EVENT_LABELS
    ]


class _Exported(nn.Module):
    """The graph that ships: sigmoid scores, calibrated when ``CALIBRATION_THRESHOLDS`` says."""

    def __init__(self, net: CompactNet) -> None:
        super().__init__()
        self.net = net
        offsets = logit_offsets()
        self.calibrated = any(offsets)
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.float32))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        logits = self.net(patches)
        return torch.sigmoid(logits + self.offsets if self.calibrated else logits)


@dataclass(frozen=True)
class TrainConfig:
    data_dir: Path
    out_dir: Path
    train_folds: tuple[int, ...] = (1, 2, 3, 4)
    eval_fold: int | None = 0
    seed: int = 1123
    windows_per_class: int = 1500
    negative_windows: int = 28000
    synth_per_class: int = 400
    traffic_clips: int = 150
    noise_clips: int = 60
    epochs: int = 14
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 1e-3
    threads: int = 1
    teacher: str = "yamnet"  # or "none"
    teacher_models: Path | None = None  # default: OUIE_MODEL_DIR, then <data>/../../models
    distill_weight: float = 0.5
    max_clips_per_label: int | None = None  # smoke runs only
    exclude_sources: tuple[str, ...] = ()  # source-disjoint builds (ouie eval --split source)
    write_card: bool = True
    command: str = ""


@dataclass
class TrainResult:
    model_path: Path
    params: int
    losses: list[float] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    report: compact_report.HeldOutReport | None = None


def _training_clips(config: TrainConfig) -> list[Clip]:
    if config.eval_fold is not None and config.eval_fold in config.train_folds:
        raise ValueError(f"fold {config.eval_fold} cannot be both trained on and held out")
    clips = select_folds(load_dataset(config.data_dir), config.train_folds)
    if config.exclude_sources:
        clips = [c for c in clips if c.source_repo not in config.exclude_sources]
    if config.max_clips_per_label is None:
        return clips
    kept: list[Clip] = []
    per_label: dict[str, int] = {}
    for clip in clips:
        if per_label.get(clip.label, 0) < config.max_clips_per_label:
            kept.append(clip)
            per_label[clip.label] = per_label.get(clip.label, 0) + 1
    return kept


class YamnetEmbeddings:
    """YAMNet's 1024-d embedding (the pooled layer before its classifier) of log-mel patches.

    The shared build is int8-quantised; the embedding is read from the interpreter's
    preserved intermediate tensors and dequantised. YAMNet takes the same log-mel patches
    as ouie-compact, so the teacher sees exactly the student's input.
    """

    def __init__(self, model_path: Path, threads: int, with_scores: bool = False) -> None:
        from ouie.node.classifiers.yamnet import _interpreter_class

        interpreter_class = _interpreter_class()  # ai-edge-litert or tflite-runtime
        with warnings.catch_warnings():  # "preserve_all_tensors is for debugging"
            warnings.simplefilter("ignore", UserWarning)
            self._interpreter = interpreter_class(
                model_path=str(model_path),
                num_threads=threads,
                experimental_preserve_all_tensors=True,
            )
        self._interpreter.allocate_tensors()
        self._input = int(self._interpreter.get_input_details()[0]["index"])
        (detail,) = [
            d
            for d in self._interpreter.get_tensor_details()
            if d["name"].endswith("reduce_mean") and int(np.prod(d["shape"])) == EMBEDDING_DIM
        ]
        self._index = int(detail["index"])
        scale, zero = detail["quantization"]
        self._scale, self._zero = float(scale) or 1.0, int(zero)
        self._output = int(self._interpreter.get_output_details()[0]["index"])
        self._with_scores = with_scores

    def both(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings ``[n, 1024]`` and the 521 AudioSet scores ``[n, 521]`` in one pass."""
        out = np.empty((len(patches), EMBEDDING_DIM), dtype=np.float32)
        scores = np.empty((len(patches), 521 if self._with_scores else 0), dtype=np.float32)
        for i, patch in enumerate(np.asarray(patches, dtype=np.float32)):
            self._interpreter.set_tensor(self._input, patch[None])
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._index).reshape(-1).astype(np.float32)
            out[i] = (raw - self._zero) * self._scale
            if self._with_scores:
                scores[i] = self._interpreter.get_tensor(self._output)[0]
        return out, scores

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        return self.both(patches)[0]


def load_teacher(config: TrainConfig, log: bool = True) -> tuple[compact_data.Teacher, str] | None:
    """YAMNet embeddings as distillation targets, when its model file is at hand."""
    if config.teacher == "none":
        return None
    if config.teacher != "yamnet":
        raise ValueError(f"unknown teacher {config.teacher!r} (yamnet or none)")
    from ouie.models.store import ModelFileError, model_dir, resolve, short_digest
    from ouie.node.classifiers.base import ClassifierError

    candidates = (
        [config.teacher_models]
        if config.teacher_models is not None
        else [model_dir(), config.data_dir.resolve().parent.parent / "models"]
    )
    problems: list[str] = []
    for folder in candidates:
        try:
            path = resolve(YAMNET_FILE, folder)
            teacher = YamnetEmbeddings(path, config.threads)
        except (ImportError, ModelFileError, ClassifierError) as exc:
            problems.append(f"{folder}: {exc}")
            continue
        return teacher, f"yamnet-tflite@{short_digest(path)} embeddings"
    if config.teacher_models is not None:
        raise RuntimeError("teacher unavailable: " + "; ".join(problems))
    if log:
        print("no YAMNet teacher found, training on hard labels only: " + "; ".join(problems))
    return None


def standardise(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns of the teacher embeddings that vary, z-scored: (targets, kept columns)."""
    values = embeddings.astype(np.float32)
    std = values.std(axis=0)
    kept = np.flatnonzero(std > 1e-3)
    mean = values[:, kept].mean(axis=0)
    return (values[:, kept] - mean) / std[kept], kept


def fit(
    net: CompactNet, data: compact_data.TrainingSet, config: TrainConfig, log: bool = True
) -> list[float]:
    """AdamW with a one-cycle schedule and multi-label BCE (plus, with a teacher, MSE of the
    auxiliary head against the teacher's z-scored embedding); returns the loss per epoch."""
    rng = np.random.default_rng(config.seed + 1)
    n = len(data.targets)
    steps_per_epoch = max(1, n // config.batch_size)
    optimiser = torch.optim.AdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser,
        max_lr=config.learning_rate,
        total_steps=steps_per_epoch * config.epochs,
        pct_start=0.15,
    )
    per_label = nn.BCEWithLogitsLoss(reduction="none")
    targets = torch.from_numpy(data.targets)
    weights = torch.from_numpy(data.weights)
    soft: torch.Tensor | None = None
    mse = nn.MSELoss()
    if net.aux is not None and data.teacher is not None:
        soft = torch.from_numpy(standardise(data.teacher)[0])
    losses: list[float] = []
    for epoch in range(config.epochs):
        net.train()
        order = rng.permutation(n)
        total, started = 0.0, time.perf_counter()
        for step in range(steps_per_epoch):
            index = np.sort(order[step * config.batch_size : (step + 1) * config.batch_size])
            patches = torch.from_numpy(data.patches[index].astype(np.float32))
            if rng.random() < 0.5:  # frequency masking: up to 8 bands
                width = int(rng.integers(1, 9))
                low = int(rng.integers(0, frontend.N_MELS - width))
                patches[:, :, low : low + width] = patches.mean()
            w = weights[index]
            if soft is None:
                logits = net(patches)
            else:
                logits, aux = net.forward_with_aux(patches)
            bce = per_label(logits, targets[index]).mean(dim=1)
            loss = (bce * w).sum() / w.sum()
            if soft is not None:
                loss = loss + config.distill_weight * mse(aux, soft[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.item())
        losses.append(total / steps_per_epoch)
        if log:
            print(
                f"epoch {epoch + 1}/{config.epochs}: loss {losses[-1]:.4f} "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    net.eval()
    return losses


def export_onnx(net: CompactNet, path: Path, check: torch.Tensor) -> float:
    """Write ``path`` and return the largest |onnxruntime − torch| on ``check``."""
    model = _Exported(net).eval()
    dummy = torch.zeros((1, frontend.PATCH_FRAMES, frontend.N_MELS), dtype=torch.float32)
    return export_checked(
        model,
        dummy,
        path,
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        checks=[check.numpy()],
        tolerance=TOLERANCE,
    )


def write_digest(model_path: Path) -> str:
    import hashlib

    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    (model_path.parent / DIGEST_NAME).write_text(f"{digest}  {model_path.name}\n", "utf-8")
    return digest


def train(config: TrainConfig, log: bool = True) -> TrainResult:
    """Build the training set, fit, export, and (optionally) evaluate and write the card."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True)
    try:
        return _train(config, log)
    finally:  # leave the process as it was (tests call this in-process)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train(config: TrainConfig, log: bool) -> TrainResult:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    clips = _training_clips(config)
    teacher = load_teacher(config, log)
    pools = compact_data.build_pools(
        clips, rng, config.synth_per_class, config.traffic_clips, config.noise_clips
    )
    data = compact_data.build_training_set(
        pools,
        rng,
        config.windows_per_class,
        config.negative_windows,
        teacher=teacher[0] if teacher else None,
    )
    timings["data_s"] = time.perf_counter() - started
    if log:
        print(
            f"{len(clips)} training clips, sources {pools.counts()}, "
            f"{len(data.targets)} windows in {timings['data_s']:.0f} s",
            flush=True,
        )

    started = time.perf_counter()
    aux = len(standardise(data.teacher)[1]) if data.teacher is not None else 0
    net = CompactNet(aux_outputs=aux)
    losses = fit(net, data, config, log=log)
    timings["fit_s"] = time.perf_counter() - started

    model_path = config.out_dir / MODEL_NAME
    check = torch.from_numpy(data.patches[:16].astype(np.float32))
    worst = export_onnx(net, model_path, check)
    digest = write_digest(model_path)
    if config.exclude_sources:  # a source-disjoint build: what ouie eval --split source reads
        from ouie.eval.builds import BUILD_FILE, BuildInfo

        info = BuildInfo(
            excluded_sources=list(config.exclude_sources),
            model_id=model_id_for(digest),
            trained_sources=sorted({c.source_repo for c in clips}),
        )
        (config.out_dir / BUILD_FILE).write_text(info.model_dump_json(indent=2) + "\n", "utf-8")
    params = net.exported_parameters()
    if log:
        print(
            f"wrote {model_path} ({model_path.stat().st_size} bytes, {params} parameters, "
            f"onnxruntime vs torch {worst:.1e})",
            flush=True,
        )
    result = TrainResult(model_path, params, losses, timings)

    if config.eval_fold is not None:
        started = time.perf_counter()
        held_out = select_folds(load_dataset(config.data_dir), [config.eval_fold])
        result.report = compact_report.evaluate(model_path, held_out, config.eval_fold, log=log)
        timings["eval_s"] = time.perf_counter() - started
        if log:
            print(compact_report.summary_table(result.report), flush=True)
    if config.write_card:
        card = compact_report.render_card(
            config=compact_report.CardInputs(
                command=config.command,
                train_folds=config.train_folds,
                seed=config.seed,
                epochs=config.epochs,
                windows_per_class=config.windows_per_class,
                negative_windows=config.negative_windows,
                calibration={k.value: v for k, v in CALIBRATION_THRESHOLDS.items()},
                teacher=f"{teacher[1]} ({aux} dimensions, MSE weight {config.distill_weight})"
                if teacher
                else None,
                params=params,
                model_bytes=model_path.stat().st_size,
                losses=losses,
                timings_s=timings,
                source_counts=pools.counts(),
                synthetic=dict(pools.synthetic),
                training_clips=clips,
                data_dir=config.data_dir,
            ),
            report=result.report,
        )
        (config.out_dir / CARD_NAME).write_text(card, encoding="utf-8")
    return result


def _folds(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ouie.train.compact", description="Train and export ouie-compact."
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset dir (labels.csv)")
    parser.add_argument("--out", type=Path, required=True, help="output dir for the model")
    parser.add_argument("--train-folds", type=_folds, default=(1, 2, 3, 4))
    parser.add_argument("--eval-fold", type=int, default=0, help="-1: no evaluation")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--windows-per-class", type=int, default=TrainConfig.windows_per_class)
    parser.add_argument("--negative-windows", type=int, default=TrainConfig.negative_windows)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument("--teacher", choices=["yamnet", "none"], default=TrainConfig.teacher)
    parser.add_argument("--teacher-models", type=Path, default=None, help="YAMNet model dir")
    parser.add_argument("--distill-weight", type=float, default=TrainConfig.distill_weight)
    parser.add_argument(
        "--exclude-source",
        action="append",
        default=[],
        help="leave this source_repo out (repeatable); writes build.json for "
        "ouie eval --split source --builds",
    )
    args = parser.parse_args(argv)
    config = TrainConfig(
        data_dir=args.data,
        out_dir=args.out,
        train_folds=args.train_folds,
        eval_fold=None if args.eval_fold < 0 else args.eval_fold,
        seed=args.seed,
        epochs=args.epochs,
        windows_per_class=args.windows_per_class,
        negative_windows=args.negative_windows,
        threads=args.threads,
        teacher=args.teacher,
        teacher_models=args.teacher_models,
        distill_weight=args.distill_weight,
        exclude_sources=tuple(args.exclude_source),
        command=shlex.join(["python", "-m", "ouie.train.compact", *(argv or sys.argv[1:])]),
    )
    train(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
