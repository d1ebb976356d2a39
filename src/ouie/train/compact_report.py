"""Held-out figures for ouie-compact and its data card.

The exported model is scored through the runtime backend (``ouie.node.classifiers.compact``)
on every clip of the held-out fold, window by window on the node's own grid
(``ouie.node.pipeline.window_starts``, 0.25 s hop, zero-padded short clips):

- per target class, clip-level detection: a clip counts as detected when its class's
  highest window score reaches the class's shipped threshold (``THRESHOLDS``: the tuned
  defaults in ``ouie/node/classifiers/tuned/ouie-compact.json``, else 0.5); a false
  trigger is a clip of another label on which the class reaches its threshold;
- on non-target clips (background, speech, other sounds), the share of clips and of
  windows on which any class reaches its threshold;
- on synthetic car alarms, spray cans and crashes (a seed the training never used) mixed
  into the held-out fold's backgrounds at −6…+6 dB, the same clip-level detection —
  synthetic, so an optimistic check that the classes were learned, not a field figure;
- inference time per patch on one thread.

These are clip figures, not DCASE event metrics; ``ouie eval`` measures those.
"""

from __future__ import annotations

import csv
import datetime as dt
import platform
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ouie.config.node import EventSettings
from ouie.core.labels import EVENT_LABELS, EventLabel, is_target
from ouie.eval.dataset import Clip
from ouie.node.classifiers.compact import CompactClassifier, load_model_bytes
from ouie.node.frontends import yamnet as frontend
from ouie.node.pipeline import window_starts
from ouie.node.tuned import with_tuned_defaults
from ouie.train import compact_data, synth

MODEL_FAMILY = "ouie-compact"


def shipped_thresholds() -> tuple[float, ...]:
    """Per-class thresholds the node applies to ouie-compact by default, in label order."""
    events = with_tuned_defaults(EventSettings(), f"{MODEL_FAMILY}@")
    return tuple(events.threshold(label) for label in EVENT_LABELS)


#: The figures are measured at the thresholds the node uses, so they describe what ships.
THRESHOLDS = shipped_thresholds()
SYNTH_SEED = 990_001  # never used for training
SYNTH_PER_CLASS = 40
SYNTH_EBR_DB = (-6.0, 6.0)
NON_TARGET_GROUPS = ("background", "speech", "other", "ESC-50 non-target")


@dataclass(frozen=True)
class ClipResult:
    file: str
    label: str
    max_scores: tuple[float, ...]
    windows: int
    windows_flagged: int  # any class ≥ its threshold
    duration_s: float

    def fired(self) -> list[EventLabel]:
        pairs = zip(self.max_scores, THRESHOLDS, strict=True)
        return [label for label, (s, t) in zip(EVENT_LABELS, pairs, strict=True) if s >= t]


@dataclass(frozen=True)
class ClassFigures:
    n: int
    detected: int
    false_triggers: int  # clips of other labels where this class fired

    @property
    def recall(self) -> float:
        return self.detected / self.n if self.n else float("nan")

    @property
    def precision(self) -> float:
        fired = self.detected + self.false_triggers
        return self.detected / fired if fired else float("nan")


@dataclass(frozen=True)
class GroupFigures:
    clips: int
    clips_flagged: int
    windows: int
    windows_flagged: int
    hours: float


@dataclass
class HeldOutReport:
    fold: int
    results: list[ClipResult]
    synthetic: list[ClipResult]
    ms_per_patch: float  # network, batch of one, one thread
    frontend_ms_per_window: float
    per_class: dict[str, ClassFigures] = field(default_factory=dict)
    synthetic_per_class: dict[str, ClassFigures] = field(default_factory=dict)
    groups: dict[str, GroupFigures] = field(default_factory=dict)


def group_of(label: str, file: str) -> str | None:
    if is_target(label):
        return None
    if label in compact_data.BACKGROUND_LABELS:
        return "background"
    if label == compact_data.SPEECH_LABEL:
        return "speech"
    if label == "other":
        return "other"
    return "ESC-50 non-target" if file.startswith("esc50/") else "other"


def score_audio(classifier: CompactClassifier, audio: np.ndarray) -> tuple[np.ndarray, int]:
    """Window scores ``[n, 8]`` on the node's grid."""
    starts = window_starts(audio.size, classifier.window_samples, classifier.hop_samples)
    windows = np.stack([compact_data.cut(audio, s, classifier.window_samples) for s in starts])
    return classifier.scores(windows), len(starts)


def _result(file: str, label: str, scores: np.ndarray, duration_s: float) -> ClipResult:
    return ClipResult(
        file=file,
        label=label,
        max_scores=tuple(float(v) for v in scores.max(axis=0)),
        windows=len(scores),
        windows_flagged=int(np.sum(np.any(scores >= np.asarray(THRESHOLDS), axis=1))),
        duration_s=duration_s,
    )


def class_figures(results: Sequence[ClipResult]) -> dict[str, ClassFigures]:
    out: dict[str, ClassFigures] = {}
    for k, label in enumerate(EVENT_LABELS):
        mine = [r for r in results if r.label == label.value]
        others = [r for r in results if r.label != label.value]
        out[label.value] = ClassFigures(
            n=len(mine),
            detected=sum(r.max_scores[k] >= THRESHOLDS[k] for r in mine),
            false_triggers=sum(r.max_scores[k] >= THRESHOLDS[k] for r in others),
        )
    return out


def group_figures(results: Sequence[ClipResult]) -> dict[str, GroupFigures]:
    out: dict[str, GroupFigures] = {}
    for group in NON_TARGET_GROUPS:
        mine = [r for r in results if group_of(r.label, r.file) == group]
        out[group] = GroupFigures(
            clips=len(mine),
            clips_flagged=sum(bool(r.fired()) for r in mine),
            windows=sum(r.windows for r in mine),
            windows_flagged=sum(r.windows_flagged for r in mine),
            hours=sum(r.duration_s for r in mine) / 3600.0,
        )
    return out


def _synthetic_results(
    classifier: CompactClassifier, backgrounds: Sequence[np.ndarray]
) -> list[ClipResult]:
    """Synthetic events mixed into held-out backgrounds (4 s scenes, event at 0.5–1.5 s)."""
    rng = np.random.default_rng(SYNTH_SEED)
    scene = 4 * frontend.SAMPLE_RATE
    results: list[ClipResult] = []
    for label, generator in synth.EVENT_GENERATORS.items():
        for i in range(SYNTH_PER_CLASS):
            event = generator(rng)[: scene - frontend.SAMPLE_RATE * 3 // 2]
            background = backgrounds[int(rng.integers(0, len(backgrounds)))]
            bed = np.resize(background, scene).astype(np.float32)
            onset = int(rng.uniform(0.5, 1.5) * frontend.SAMPLE_RATE)
            placed = compact_data.cut(event, -onset, scene)
            mixture = compact_data.mix_at(bed, placed, float(rng.uniform(*SYNTH_EBR_DB)))
            mixture = mixture * (0.3 / max(1e-6, float(np.max(np.abs(mixture)))))
            scores, _ = score_audio(classifier, mixture.astype(np.float32))
            results.append(_result(f"synth:{label.value}:{i}", label.value, scores, 4.0))
    return results


def _timings(classifier: CompactClassifier) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    window = (0.1 * rng.standard_normal((1, frontend.PATCH_SAMPLES))).astype(np.float32)
    patch = classifier.patches(window)
    for _ in range(20):
        classifier.patch_scores(patch)
    runs = 300
    started = time.perf_counter()
    for _ in range(runs):
        classifier.patch_scores(patch)
    network_ms = (time.perf_counter() - started) / runs * 1e3
    started = time.perf_counter()
    for _ in range(runs):
        classifier.patches(window)
    frontend_ms = (time.perf_counter() - started) / runs * 1e3
    return network_ms, frontend_ms


def evaluate(model_path: Path, clips: Sequence[Clip], fold: int, log: bool = True) -> HeldOutReport:
    """Score the held-out ``clips`` with the exported model, through the runtime backend."""
    classifier = CompactClassifier(load_model_bytes(model_path.parent), threads=1)
    results: list[ClipResult] = []
    backgrounds: list[np.ndarray] = []
    for clip in clips:
        audio = compact_data.load_clip(clip)
        if clip.label in compact_data.BACKGROUND_LABELS and audio.size:
            backgrounds.append(audio)
        scores, _ = score_audio(classifier, audio)
        results.append(_result(clip.file, clip.label, scores, audio.size / frontend.SAMPLE_RATE))
    synthetic = _synthetic_results(classifier, backgrounds) if backgrounds else []
    network_ms, frontend_ms = _timings(classifier)
    report = HeldOutReport(fold, results, synthetic, network_ms, frontend_ms)
    report.per_class = class_figures(results)
    report.synthetic_per_class = {
        label: figures for label, figures in class_figures(synthetic).items() if figures.n > 0
    }
    report.groups = group_figures(results)
    if log:
        print(f"scored {len(results)} clips of fold {fold} and {len(synthetic)} synthetic scenes")
    return report


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f} %" if whole else "–"


def _ratio(value: float) -> str:
    return "–" if value != value else f"{value:.2f}"  # NaN check


def threshold_text() -> str:
    return ", ".join(
        f"{label.value} {threshold:.2f}"
        for label, threshold in zip(EVENT_LABELS, THRESHOLDS, strict=True)
    )


def summary_table(report: HeldOutReport) -> str:
    lines = [
        f"Held-out fold {report.fold}: clip-level detection at the shipped thresholds "
        f"({threshold_text()})",
        "",
        "| class | clips | detected | recall | false triggers on other clips | precision |",
        "|---|---|---|---|---|---|",
    ]
    for label, fig in report.per_class.items():
        lines.append(
            f"| {label} | {fig.n} | {fig.detected} | {_ratio(fig.recall)} | "
            f"{fig.false_triggers} | {_ratio(fig.precision)} |"
        )
    targets = [r for r in report.results if is_target(r.label)]
    correct = sum(EventLabel(r.label) in r.fired() for r in targets)
    lines += [
        "",
        f"Target clips detected as their class: {correct}/{len(targets)} "
        f"({_pct(correct, len(targets))}).",
        "",
        "| non-target clips | clips | clips where any class fired | windows | windows fired "
        "| audio |",
        "|---|---|---|---|---|---|",
    ]
    for group, grp in report.groups.items():
        lines.append(
            f"| {group} | {grp.clips} | {grp.clips_flagged} ({_pct(grp.clips_flagged, grp.clips)}) "
            f"| {grp.windows} | {grp.windows_flagged} ({_pct(grp.windows_flagged, grp.windows)}) "
            f"| {grp.hours * 60:.1f} min |"
        )
    if report.synthetic_per_class:
        lines += [
            "",
            f"Synthetic events (seed {SYNTH_SEED}, not used in training) in fold-{report.fold} "
            f"backgrounds at {SYNTH_EBR_DB[0]:+.0f}…{SYNTH_EBR_DB[1]:+.0f} dB:",
            "",
            "| class | scenes | detected | recall |",
            "|---|---|---|---|",
        ]
        for label, fig in report.synthetic_per_class.items():
            lines.append(
                f"| {label} (synthetic) | {fig.n} | {fig.detected} | {_ratio(fig.recall)} |"
            )
    lines += [
        "",
        f"Inference on one thread: network {report.ms_per_patch:.3f} ms per patch, "
        f"front-end {report.frontend_ms_per_window:.3f} ms per window.",
    ]
    return "\n".join(lines)


def confusion_table(report: HeldOutReport) -> str:
    """Rows: true label (targets); columns: classes reaching their threshold on those clips."""
    header = "| true \\ fired | " + " | ".join(label.value for label in EVENT_LABELS) + " | none |"
    lines = [header, "|---" * (len(EVENT_LABELS) + 2) + "|"]
    rows = sorted({r.label for r in report.results if is_target(r.label)}) + list(NON_TARGET_GROUPS)
    for row in rows:
        mine = [
            r
            for r in report.results
            if (r.label == row if is_target(row) else group_of(r.label, r.file) == row)
        ]
        counts = [
            sum(r.max_scores[k] >= THRESHOLDS[k] for r in mine) for k in range(len(EVENT_LABELS))
        ]
        none = sum(not r.fired() for r in mine)
        lines.append(f"| {row} ({len(mine)}) | " + " | ".join(map(str, counts)) + f" | {none} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class CardInputs:
    command: str
    train_folds: tuple[int, ...]
    seed: int
    epochs: int
    windows_per_class: int
    negative_windows: int
    teacher: str | None
    calibration: dict[str, float]
    params: int
    model_bytes: int
    losses: list[float]
    timings_s: dict[str, float]
    source_counts: dict[str, int]
    synthetic: dict[EventLabel, int]
    training_clips: Sequence[Clip]
    data_dir: Path


def licence_table(clips: Sequence[Clip], data_dir: Path) -> str:
    licences: dict[str, str] = {}
    labels_csv = data_dir / "labels.csv"
    with labels_csv.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            licences[row.get("file", "")] = (row.get("licence") or "").strip() or "not stated"
    counts = Counter(licences.get(clip.file, "not stated") for clip in clips)
    lines = ["| licence (labels.csv `licence` column) | training clips |", "|---|---|"]
    for licence, n in counts.most_common():
        lines.append(f"| {licence.replace('|', '/')} | {n} |")
    return "\n".join(lines)


def source_table(report: HeldOutReport) -> str:
    """Recall of each target class per source collection (the file's top folder)."""
    lines = ["| class | collection | clips | detected |", "|---|---|---|---|"]
    groups: dict[tuple[str, str], list[ClipResult]] = {}
    for r in report.results:
        if is_target(r.label):
            groups.setdefault((r.label, r.file.split("/")[0]), []).append(r)
    for (label, folder), mine in sorted(groups.items()):
        k = EVENT_LABELS.index(EventLabel(label))
        found = sum(r.max_scores[k] >= THRESHOLDS[k] for r in mine)
        lines.append(f"| {label} | {folder} | {len(mine)} | {found} |")
    return "\n".join(lines)


def _false_trigger_sources(report: HeldOutReport, k: int) -> str:
    counts = Counter(
        r.label
        for r in report.results
        if r.label != EVENT_LABELS[k].value and r.max_scores[k] >= THRESHOLDS[k]
    )
    return ", ".join(f"{label} {n}" for label, n in counts.most_common(4))


def _weak_classes(report: HeldOutReport) -> list[str]:
    notes: list[str] = []
    for k, (label, fig) in enumerate(report.per_class.items()):
        if fig.n == 0:
            notes.append(f"`{label}`: no real held-out clip, so no real-world figure at all")
        elif fig.n < 5:
            notes.append(
                f"`{label}`: only {fig.n} held-out clip(s) ({fig.detected} detected) — "
                "too few to measure"
            )
        elif fig.recall < 0.8:
            notes.append(f"`{label}`: weak, recall {fig.recall:.2f} on {fig.n} held-out clips")
        if fig.false_triggers and fig.precision < 0.8:
            notes.append(
                f"`{label}`: fires on {fig.false_triggers} held-out clips of other labels "
                f"(precision {fig.precision:.2f}; most often {_false_trigger_sources(report, k)})"
            )
    return notes


def render_card(config: CardInputs, report: HeldOutReport | None) -> str:
    import onnx
    import torch

    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    train_counts = Counter(clip.label for clip in config.training_clips)
    synth_text = ", ".join(f"{label.value} {n}" for label, n in config.synthetic.items())
    lines = [
        "# ouie-compact — data card",
        "",
        "ouie's default classifier: a small CNN trained by this repository on the dev clips "
        "plus synthetic events. Generated by `ouie.train.compact` (do not edit by hand; "
        "retrain instead).",
        "",
        "## Model",
        "",
        f"- File `ouie_compact.onnx`, {config.model_bytes:,} bytes, {config.params:,} "
        "parameters (float32); digest in `ouie_compact.sha256`, checked at every load.",
        "- Input `logmel` [batch, 96, 64]: YAMNet-style log-mel patches from "
        "`ouie.node.frontends.yamnet` (16 kHz mono, 25 ms frames, 10 ms hop, 64 bands "
        "125–7500 Hz), one patch per 15,600-sample window (0.975 s). Output `scores` "
        "[batch, 8]: independent sigmoid scores in `EVENT_LABELS` order (gunshot, "
        "glass_breaking, scream, explosion, vehicle_crash, siren, car_alarm, spray_can). "
        "No speech class exists in the model.",
        "- Network: per-band batch norm; conv 5×5/2 (16 ch), 3×3/2 (32), 3×3/2 (64), "
        "3×3/(2,1) (128), each with batch norm and ReLU; mean over frequency; mean and max "
        "over time; dropout 0.2; linear 256→8.",
        (
            "- Calibration: the exported scores are sigmoid(logit + offset) with per-class "
            "offsets that move the threshold found best on a validation fold to 0.5: "
            + ", ".join(f"{k} {v:.2f} → 0.5" for k, v in config.calibration.items())
            + " (`CALIBRATION_THRESHOLDS` in `ouie.train.compact`)."
            if config.calibration
            else "- Calibration: none; plain sigmoid scores (`CALIBRATION_THRESHOLDS` in "
            "`ouie.train.compact` explains the calibration that was tried and dropped)."
        ),
        "- Runtime: onnxruntime only (`ouie.node.classifiers.compact`), default hop 0.25 s.",
        "",
        "## Training",
        "",
        f"- Date: {today} (UTC). Command: `{config.command or 'ouie.train.compact.train()'}`.",
        f"- Seed {config.seed}; {config.epochs} epochs of AdamW (one-cycle LR, weight decay), "
        "multi-label binary cross-entropy, batch 128, frequency masking; one CPU thread, "
        "deterministic algorithms.",
        (
            f"- Distillation: an auxiliary linear head (training only, not exported) "
            f"regresses the teacher's z-scored embedding of every training window: "
            f"{config.teacher}."
            if config.teacher
            else "- No teacher: hard labels only."
        ),
        f"- Versions: Python {platform.python_version()}, torch {torch.__version__}, "
        f"onnx {onnx.__version__}, numpy {np.__version__}.",
        f"- Wall time: data {config.timings_s.get('data_s', 0):.0f} s, fitting "
        f"{config.timings_s.get('fit_s', 0):.0f} s. Loss per epoch: "
        + ", ".join(f"{v:.4f}" for v in config.losses)
        + ".",
        "",
        "## Data",
        "",
        f"- Real clips: `{config.data_dir.name}` dataset, folds "
        f"{', '.join(map(str, config.train_folds))} only ({len(config.training_clips)} clips); "
        "folds group clips by original recording (`ouie.eval.dataset`), so no held-out clip "
        "has a sibling in training.",
        "- Training clips per label: "
        + ", ".join(f"{label} {n}" for label, n in sorted(train_counts.items()))
        + ".",
        f"- **Synthetic** sources (`ouie.train.synth`): {synth_text}. car_alarm, spray_can "
        "and vehicle_crash are learned almost entirely from these generators (the dev "
        "data holds one or two real clips of each: a positive window uses a synthetic "
        "source with probability max(0.5, n_synth / (n_synth + 10·n_real))); synthetic "
        "sirens (wail, yelp, hi-lo) fill half of the siren windows beside the real ones. "
        "Generated traffic is added to the backgrounds.",
        f"- Windows: {config.windows_per_class} positives per class (balanced, cut around "
        f"energetic frames, event anywhere in the window) and {config.negative_windows} "
        "negatives (speech from both speech folders, weighted "
        f"×{compact_data.SPEECH_WEIGHT:g} in the loss, "
        f"{compact_data.SPEECH_ANYWHERE:.0%} of it cut anywhere in a recording, pauses "
        f"and edges included, {1 - compact_data.SPEECH_MIX_P:.0%} left unmixed; other and "
        "ESC-50 non-target sounds; "
        "backgrounds, ambience, generated traffic). Augmentation "
        "(`ouie.train.compact_data`): mixing into backgrounds at "
        f"{_range(compact_data.EBR_RANGE_DB)} dB event-to-background ratio, levels "
        f"{_range(compact_data.LEVEL_RANGE_DBFS)} dBFS, random low/high-pass filters, "
        "exponential-decay noise reverberation (RT60 0.2–1.2 s), occasional second event "
        "or voice in the scene, some clipping.",
        "- Source counts after loading: "
        + ", ".join(f"{k} {v}" for k, v in config.source_counts.items())
        + ".",
        "",
        "### Licences of the training data",
        "",
        "The model is derived from these recordings and inherits their terms. ESC-50 "
        "(K. J. Piczak) is **CC BY-NC 3.0**: treat the model as non-commercial unless it "
        "is retrained without the `esc50/` clips. Many sources state no licence at all.",
        "",
        licence_table(config.training_clips, config.data_dir),
        "",
    ]
    if report is not None:
        lines += [
            f"## Held-out evaluation (fold {report.fold}, never trained or tuned on)",
            "",
            "Figures from `ouie.train.compact_report`: every window of every fold-"
            f"{report.fold} clip on the node's grid (0.975 s windows, 0.25 s hop), through "
            "the runtime backend. Clip-level: a clip is detected for a class when that "
            "class's best window reaches that class's shipped threshold ("
            f"{threshold_text()}; `ouie eval tune`, docs/eval.md). Event F1, error rate and "
            "false alarms "
            "per hour on mixtures come from `ouie eval` (docs/benchmarks.md).",
            "",
            summary_table(report),
            "",
            "Classes reaching their threshold on held-out clips, by true label:",
            "",
            confusion_table(report),
            "",
            "Detection by source collection (collections differ a lot in recording quality):",
            "",
            source_table(report),
            "",
        ]
        weak = _weak_classes(report)
        lines += ["## Known weaknesses", ""]
        lines += [f"- {note}" for note in weak] or ["- none flagged by the held-out figures"]
    else:
        lines += ["## Known weaknesses", ""]
    lines += [
        "- car_alarm, spray_can and vehicle_crash come from generators: real alarms, sprays "
        "and crashes may sound different; their synthetic recall above is optimistic.",
        "- The dev clips are short isolated examples, several from small or unlabelled "
        "collections (labels may be noisy); long ambience is scarce (12 min of loops).",
        "- Speech is read speech (English, French, German, Spanish, Portuguese); the node's "
        "speech guard is a second line of defence, not this model.",
        "",
    ]
    return "\n".join(lines)


def _range(bounds: tuple[float, float]) -> str:
    """``(-6.0, 20.0)`` as "−6…+20" (signed, typographic minus)."""

    def signed(value: float) -> str:
        text = f"{value:+g}"
        return text.replace("-", "−") if value < 0 else text

    return f"{signed(bounds[0])}…{signed(bounds[1])}"
