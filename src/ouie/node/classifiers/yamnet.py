"""YAMNet backend: Google's AudioSet tagger (MobileNetV1, 521 classes) on TFLite.

The network file is ``yamnet_spectra_in.tflite`` (coralmicro build), which takes one log-mel
patch ``[1, 96, 64]`` and returns ``[1, 521]`` sigmoid scores in ``yamnet_class_map.csv``
order. The log-mel patch comes from ouie's own front-end (``ouie.node.frontends.yamnet``),
verified against the test vectors shipped beside the model. A window is 15,600 samples
(0.975 s) at 16 kHz, which gives exactly 96 frames; the default hop is 0.48 s (50 % overlap).

The AudioSet scores are reduced to ouie's eight labels (``audioset_map``) inside the
backend, so no AudioSet class (Speech in particular) ever leaves it. ``audioset_scores``
and ``raw_scores`` give the 521 raw scores for tests and evaluation only.

The graph has a fixed batch of one (a reshape inside it is hard-coded), so resizing the
input tensor for batches fails; batches are scored one patch at a time, which costs
nothing measurable next to the network itself (≈0.6 ms per patch on one core).
"""

from __future__ import annotations

import csv
import importlib
from pathlib import Path
from typing import Any

import numpy as np

from ouie.config.classifiers import ClassifierSettings, YamnetSettings
from ouie.core.labels import EVENT_LABELS
from ouie.models.store import KNOWN_FILES, model_dir, resolve
from ouie.node.classifiers.audioset_map import AudioSetMapper, read_class_mids
from ouie.node.classifiers.base import ClassifierBase, ClassifierError, FloatArray
from ouie.node.frontends import yamnet as frontend

BACKEND = "yamnet"
DESCRIPTION = "YAMNet (AudioSet, 521 classes, MobileNetV1) on TFLite via ai-edge-litert"

MODEL_FILE = "yamnet_spectra_in.tflite"
CLASS_MAP_FILE = "yamnet_class_map.csv"
#: Files this backend loads from the model directory (``ouie models list`` shows them).
MODEL_FILES: tuple[str, ...] = (MODEL_FILE, CLASS_MAP_FILE)

SAMPLE_RATE = frontend.SAMPLE_RATE
WINDOW_SAMPLES = frontend.PATCH_SAMPLES
DEFAULT_HOP_S = 0.48
N_CLASSES = 521

_RUNTIMES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


def _interpreter_class() -> Any:
    """The TFLite ``Interpreter`` class: ai-edge-litert, else tflite-runtime."""
    for name in _RUNTIMES:
        try:
            return importlib.import_module(name).Interpreter
        except ImportError:
            continue
    raise ClassifierError(
        "the yamnet backend needs a TFLite runtime: install the node extra "
        "(pip install 'ouie[node]', which brings ai-edge-litert)"
    )


def _read_display_names(class_csv: Path) -> list[str]:
    with class_csv.open(newline="", encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: int(r["index"]))
    return [row["display_name"] for row in rows]


class YamnetClassifier(ClassifierBase):
    """YAMNet on log-mel patches; ``scores`` maps to ouie labels, ``raw_scores`` does not."""

    def __init__(self, model_path: Path, class_csv: Path, threads: int, hop_samples: int) -> None:
        mids = read_class_mids(class_csv)
        if len(mids) != N_CLASSES:
            raise ClassifierError(f"{class_csv} lists {len(mids)} classes, expected {N_CLASSES}")
        self.class_names: list[str] = _read_display_names(class_csv)
        self._mapper = AudioSetMapper(mids)
        digest = KNOWN_FILES[MODEL_FILE].sha256 or ""  # resolve() has checked the file against it
        super().__init__(
            model_id=f"yamnet-tflite@{digest[:8]}",
            sample_rate=SAMPLE_RATE,
            window_samples=WINDOW_SAMPLES,
            hop_samples=hop_samples,
        )

        interpreter = _interpreter_class()(model_path=str(model_path), num_threads=threads)
        interpreter.allocate_tensors()
        (input_detail,) = interpreter.get_input_details()
        (output_detail,) = interpreter.get_output_details()
        expected_in = [1, frontend.PATCH_FRAMES, frontend.N_MELS]
        if list(input_detail["shape"]) != expected_in or list(output_detail["shape"]) != [
            1,
            N_CLASSES,
        ]:
            raise ClassifierError(
                f"{model_path.name}: unexpected tensor shapes {list(input_detail['shape'])} -> "
                f"{list(output_detail['shape'])}, expected {expected_in} -> [1, {N_CLASSES}]"
            )
        self._interpreter = interpreter
        self._input_index = int(input_detail["index"])
        self._output_index = int(output_detail["index"])

    def patches(self, frames: FloatArray) -> FloatArray:
        """Log-mel patches ``[n, 96, 64]`` of windows ``[n, 15600]``."""
        try:
            return frontend.window_patches(frames, "yamnet")
        except ValueError as exc:
            raise ClassifierError(str(exc)) from exc

    def raw_scores(self, patches: FloatArray) -> FloatArray:
        """The network's 521 AudioSet scores ``[n, 521]`` for log-mel patches ``[n, 96, 64]``.

        Tests and evaluation only: these include Speech, which must never leave the node.
        """
        batch = np.asarray(patches, dtype=np.float32)
        if batch.ndim == 2:
            batch = batch[None]
        if batch.shape[1:] != (frontend.PATCH_FRAMES, frontend.N_MELS):
            raise ClassifierError(
                f"yamnet expects patches [n, {frontend.PATCH_FRAMES}, {frontend.N_MELS}], "
                f"got {list(batch.shape)}"
            )
        out = np.empty((batch.shape[0], N_CLASSES), dtype=np.float32)
        for i in range(batch.shape[0]):
            self._interpreter.set_tensor(self._input_index, batch[i : i + 1])
            self._interpreter.invoke()
            out[i] = self._interpreter.get_tensor(self._output_index)[0]
        return out

    def audioset_scores(self, frames: FloatArray) -> FloatArray:
        """Raw 521 AudioSet scores of windows ``[n, 15600]`` (tests and evaluation only)."""
        return self.raw_scores(self.patches(frames))

    def scores_of_patches(self, patches: FloatArray) -> FloatArray:
        """ouie scores ``[n, 8]`` of log-mel patches ``[n, 96, 64]`` (the cascade's confirm
        stage shares ouie-compact's patches)."""
        if patches.shape[0] == 0:
            return np.zeros((0, len(EVENT_LABELS)), dtype=np.float32)
        return self._mapper(self.raw_scores(patches))

    def scores(self, frames: FloatArray) -> FloatArray:
        return self.scores_of_patches(self.patches(frames))


def hop_samples_for(settings: ClassifierSettings) -> int:
    hop_s = settings.hop_s if settings.hop_s is not None else DEFAULT_HOP_S
    return max(1, round(hop_s * SAMPLE_RATE))


def create(settings: YamnetSettings) -> YamnetClassifier:
    folder = settings.model_dir if settings.model_dir is not None else model_dir()
    model_path = resolve(MODEL_FILE, folder)
    class_csv = resolve(CLASS_MAP_FILE, folder)
    return YamnetClassifier(model_path, class_csv, settings.threads, hop_samples_for(settings))
