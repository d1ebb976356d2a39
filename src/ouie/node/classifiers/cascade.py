"""Backend ``cascade``: ouie-compact gates, the AudioSet teachers confirm.

ouie-compact (bundled) scores every window. Only the windows where some label reaches
``GATE`` — candidates — are also scored by the teachers installed in the model directory:
YAMNet (TFLite, on the very same log-mel patch) and, when present, mn04 (onnxruntime, the
window upsampled to its 32 kHz input). The teachers' AudioSet scores are mapped to ouie's
labels (``audioset_map``; no speech class is ever mapped) and averaged, and that average is
the candidate's score: compact decides where to listen, the teachers decide what it is.
Windows below the gate score 0 for every label: the cascade reports nothing compact did not
hear. (Chosen on the source-disjoint builds: the teachers' average alone on the candidates
did better than the geometric or the arithmetic mean with compact's score against all
non-target clips and source by source; the arithmetic mean did a little better against
street background alone, 0.50 against 0.47 recall at 2 % false clips.) For the labels named
in ``compact_labels`` (none by default) a candidate's score is the larger of the teachers'
and compact's own: a class the student hears where the teachers do not (docs/eval.md,
session 19).

So the teachers' cost is bounded by the candidates, like the speech guard's: on street
background a few per cent of windows. ``stage_counts`` tells how many windows each stage
scored (``ouie detect`` and the node's status show it).

ouie-compact was distilled from the same teachers (``ouie.train.distill``); the cascade puts
the teachers' own judgement back where it matters, on the few windows that may be events.
Figures per stage, measured source-disjointly, are in docs/benchmarks.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ouie.config.classifiers import ClassifierSettings, GatedSettings, Mn04Settings, YamnetSettings
from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.models import store
from ouie.node.classifiers import compact
from ouie.node.classifiers.audioset_map import logit_mean
from ouie.node.classifiers.base import ClassifierBase, ClassifierError, FloatArray
from ouie.node.frontends import mn04 as mn04_frontend
from ouie.node.resample import resample

BACKEND = "cascade"
DESCRIPTION = (
    "ouie-compact gates every window; YAMNet (+ mn04 when installed) confirm the candidates"
)

#: Files the cascade loads from the model directory beside the bundled gate (YAMNet's; mn04's
#: ``mn04_as.onnx`` joins the confirm stage when ``ouie models import`` has exported it).
MODEL_FILES: tuple[str, ...] = ("yamnet_spectra_in.tflite", "yamnet_class_map.csv")

#: A window is a candidate when some label's compact score reaches this (``gate`` in the
#: settings). Chosen on the source-disjoint builds (docs/benchmarks.md): at 0.05 the gate lets
#: through the windows of nearly every target clip and about a third of the windows of hard
#: non-target clips.
GATE = GatedSettings.model_fields["gate"].default
MN04_RATE = 32000
MN04_WINDOW = MN04_RATE  # the 0.975 s window upsampled, zero-padded to mn04's 1 s
MODEL_ID_MAX = 128  # ouie.core.messages.ModelId


def settings_suffix(
    threshold: float, teacher_mix: str, compact_labels: Sequence[EventLabel | str]
) -> str:
    """What a cascade does differently from the default, for its model id: ``+gate=0.03``,
    ``+mix=logit``, ``+compact=glass_breaking`` ('' for the defaults). Two cascades over the
    same files but another gate score differently, and an eval result, a tuned-thresholds file
    or an event message must say which one it was."""
    parts = []
    if threshold != GATE:
        parts.append(f"+gate={threshold:g}")
    if teacher_mix != "mean":
        parts.append(f"+mix={teacher_mix}")
    if compact_labels:
        labels = sorted(str(EventLabel(label).value) for label in compact_labels)
        parts.append("+compact=" + ",".join(labels))
    return "".join(parts)


def cascade_model_id(digests: Sequence[str], suffix: str) -> str:
    """``cascade@<stage digests>[<suffix>]``, the suffix shortened to a digest of itself where
    the id would pass the 128 characters of a message's ``model_id``."""
    stages = "cascade@" + "-".join(digests)
    if len(stages + suffix) > MODEL_ID_MAX:
        suffix = "+settings=" + hashlib.sha256(suffix.encode()).hexdigest()[:8]
    return stages + suffix


@dataclass
class StageCounts:
    """Windows scored by each stage since the classifier was made."""

    compact: int = 0
    yamnet: int = 0
    mn04: int = 0


class CascadeClassifier(ClassifierBase):
    """compact → (YAMNet [+ mn04]) on candidates; windows ``[n, 15600]`` → scores ``[n, 8]``."""

    def __init__(
        self,
        gate: compact.CompactClassifier,
        yamnet: Any,
        mn04: Any | None,
        threshold: float = GATE,
        teacher_mix: Literal["mean", "logit"] = "mean",
        compact_labels: Sequence[EventLabel] = (),
    ) -> None:
        # family "cascade" (its tuned thresholds), then each stage's digest in stage order
        digests = [m.model_id.split("@", 1)[-1] for m in (gate, yamnet, mn04) if m is not None]
        super().__init__(
            model_id=cascade_model_id(
                digests, settings_suffix(threshold, teacher_mix, compact_labels)
            ),
            sample_rate=gate.sample_rate,
            window_samples=gate.window_samples,
            hop_samples=gate.hop_samples,
        )
        self._gate = gate
        self._yamnet = yamnet
        self._mn04 = mn04
        self.threshold = threshold
        self.teacher_mix = teacher_mix
        # labels where compact's own score stands beside the teachers' on a candidate
        self.compact_columns = np.asarray(
            sorted({EVENT_LABELS.index(EventLabel(label)) for label in compact_labels}), np.intp
        )
        self.stage_ids = [m.model_id for m in (gate, yamnet, mn04) if m is not None]
        self.stage_counts = StageCounts()

    @property
    def stages(self) -> list[str]:
        """The stages that run, in order (``ouie detect`` and node status show them)."""
        names = ["compact", "yamnet"]
        if self._mn04 is not None:
            names.append("mn04")
        return names

    def teacher_scores(self, frames: FloatArray, patches: FloatArray) -> FloatArray:
        """The installed teachers' mapped scores ``[n, 8]``, averaged."""
        total: FloatArray = self._yamnet.scores_of_patches(patches)
        self.stage_counts.yamnet += len(frames)
        if self._mn04 is None:
            return total
        upsampled = np.zeros((len(frames), MN04_WINDOW), dtype=np.float32)
        for i, window in enumerate(frames):
            up = resample(window, self.sample_rate, MN04_RATE)[:MN04_WINDOW]
            upsampled[i, : len(up)] = up
        logmel = mn04_frontend.log_mel_batch(upsampled)[:, None, :, :]
        mn04_scores: FloatArray = self._mn04.mapped(self._mn04.raw_scores(logmel))
        self.stage_counts.mn04 += len(frames)
        if self.teacher_mix == "logit":
            return logit_mean([total, mn04_scores])
        out: FloatArray = (0.5 * (total + mn04_scores)).astype(np.float32)
        return out

    def scores(self, frames: FloatArray) -> FloatArray:
        patches = self._gate.patches(frames)
        if patches.shape[0] == 0:
            return np.zeros((0, len(EVENT_LABELS)), dtype=np.float32)
        gate_scores = self._gate.patch_scores(patches)
        self.stage_counts.compact += len(frames)
        out = np.zeros_like(gate_scores)
        candidates = np.flatnonzero(gate_scores.max(axis=1) >= self.threshold)
        if candidates.size:
            teacher = self.teacher_scores(
                np.asarray(frames, dtype=np.float32)[candidates], patches[candidates]
            )
            out[candidates] = np.clip(teacher, 0.0, 1.0)
            if self.compact_columns.size:
                rows = candidates[:, None]
                out[rows, self.compact_columns] = np.maximum(
                    out[rows, self.compact_columns], gate_scores[rows, self.compact_columns]
                )
        return out


def teacher_folder(settings: ClassifierSettings) -> Path | None:
    """Where YAMNet is installed: ``settings.model_dir`` when it holds YAMNet's file, else the
    default model directory when that does (a folder holding only an ouie-compact build, a
    source-disjoint one say, gates; the teachers come from the default one); else None."""
    from ouie.node.classifiers import yamnet

    for folder in (settings.model_dir, store.model_dir()):
        if folder is not None and (folder / yamnet.MODEL_FILE).is_file():
            return folder
    return None


def create(settings: GatedSettings) -> CascadeClassifier:
    from ouie.node.classifiers import mn04, yamnet

    gate = compact.create(settings)
    folder = teacher_folder(settings) or store.model_dir()
    try:
        yamnet_model = yamnet.create(YamnetSettings(model_dir=folder, threads=settings.threads))
    except (store.ModelFileError, ClassifierError) as exc:
        raise ClassifierError(
            f"the cascade needs YAMNet in the model directory {folder} ({exc}); run "
            "`ouie models import --from DIR`, or use the compact backend alone"
        ) from exc
    mn04_model: Any | None
    try:
        mn04_model = mn04.create(Mn04Settings(model_dir=folder, threads=settings.threads))
    except (store.ModelFileError, ClassifierError):
        mn04_model = None  # optional: YAMNet alone confirms
    return CascadeClassifier(
        gate,
        yamnet_model,
        mn04_model,
        settings.gate,
        settings.teacher_mix,
        settings.compact_labels,
    )
