"""Backend ``mn04``: EfficientAT MobileNetV3 mn04 (AudioSet, mAP .432) on onnxruntime.

Runs ``mn04_as.onnx`` (made from the released state_dict by ``ouie models import``, digest in
its ``.sha256`` sidecar) over 1 s windows at 32 kHz, using the numpy front-end in
``ouie.node.frontends.mn04`` (100 log-mel frames per window). The 527 AudioSet scores are
reduced to ouie's eight labels with ``AudioSetMapper``; speech classes are never mapped.
No torch at run time.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ouie.config.classifiers import Mn04Settings
from ouie.models import store
from ouie.node.classifiers.audioset_map import AudioSetMapper, read_class_mids
from ouie.node.classifiers.base import ClassifierBase, ClassifierError, FloatArray
from ouie.node.frontends import mn04 as frontend

BACKEND = "mn04"
DESCRIPTION = "EfficientAT mn04 (AudioSet mAP .432, MobileNetV3) on onnxruntime, 1 s at 32 kHz"

ONNX_NAME = "mn04_as.onnx"
CLASS_CSV = "audioset_class_labels_indices.csv"
#: Files this backend loads from the model directory (``ouie models list`` shows them).
MODEL_FILES: tuple[str, ...] = (ONNX_NAME, CLASS_CSV)
INPUT_NAME = "logmel"
OUTPUT_NAME = "scores"
N_AUDIOSET = 527
SAMPLE_RATE = frontend.SAMPLE_RATE
WINDOW_S = 1.0
DEFAULT_HOP_S = 0.25
IMPORT_HINT = "run `ouie models import --from ../shared/models` (needs the `train` extra)"

CPU_PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)


def providers_for(device: str) -> list[str]:
    """onnxruntime providers for ``device`` (``cpu`` or ``cuda``); CUDA must be available."""
    if device == "cpu":
        return list(CPU_PROVIDERS)
    if device == "cuda":
        import onnxruntime as ort

        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise ClassifierError(
                "device cuda asked for, but onnxruntime has no CUDAExecutionProvider "
                f"(available: {', '.join(available)}); install onnxruntime-gpu"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ClassifierError(f"unknown device {device!r}; use cpu or cuda")


def _resolve(name: str, directory: Path) -> Path:
    if not (directory / name).is_file():
        raise ClassifierError(
            f"mn04 backend: model file {name} not found in {directory}; {IMPORT_HINT}"
        )
    try:
        return store.resolve(name, directory)
    except store.ModelFileError as exc:
        raise ClassifierError(f"mn04 backend: {exc}; to recreate it, {IMPORT_HINT}") from exc


def _read_display_names(class_csv: Path) -> list[str]:
    with class_csv.open(newline="", encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: int(r["index"]))
    return [row["display_name"] for row in rows]


class Mn04Classifier(ClassifierBase):
    """The ``Classifier`` for mn04; ``audioset_scores`` gives the raw 527 scores."""

    def __init__(
        self,
        model_dir: Path | None = None,
        threads: int = 1,
        hop_s: float | None = None,
        providers: list[str] | None = None,
    ) -> None:
        folder = model_dir if model_dir is not None else store.model_dir()
        onnx_path = _resolve(ONNX_NAME, folder)
        class_csv = _resolve(CLASS_CSV, folder)
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a core dependency
            raise ClassifierError("the mn04 backend needs onnxruntime") from exc

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self._session = ort.InferenceSession(
                str(onnx_path),
                sess_options=options,
                providers=list(providers) if providers else list(CPU_PROVIDERS),
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ClassifierError(f"cannot load {onnx_path}: {exc}") from exc
        mids = read_class_mids(class_csv)
        if len(mids) != N_AUDIOSET:
            raise ClassifierError(f"{class_csv} lists {len(mids)} classes, expected {N_AUDIOSET}")
        self._mapper = AudioSetMapper(mids)
        self.class_names: list[str] = _read_display_names(class_csv)
        digest = store.expected_digest(ONNX_NAME, onnx_path) or ""  # resolve() checked it
        super().__init__(
            model_id=f"mn04-onnx@{digest[:8]}",
            sample_rate=SAMPLE_RATE,
            window_samples=round(WINDOW_S * SAMPLE_RATE),
            hop_samples=max(
                1, round((hop_s if hop_s is not None else DEFAULT_HOP_S) * SAMPLE_RATE)
            ),
        )
        self.providers: list[str] = list(self._session.get_providers())

    def patches(self, frames: FloatArray) -> FloatArray:
        """Network input ``[n, 1, 128, 100]`` (normalised log-mel) of windows ``[n, 32000]``."""
        windows = np.asarray(frames, dtype=np.float32)
        if windows.ndim != 2 or windows.shape[1] != self.window_samples:
            raise ClassifierError(
                f"mn04 expects windows of shape [n, {self.window_samples}] at {SAMPLE_RATE} Hz, "
                f"got {list(windows.shape)}"
            )
        if windows.shape[0] == 0:
            n_frames = frontend.n_frames(self.window_samples)
            return np.zeros((0, 1, frontend.N_MELS, n_frames), dtype=np.float32)
        return frontend.log_mel_batch(windows)[:, None, :, :]

    def raw_scores(self, patches: FloatArray) -> FloatArray:
        """The network's 527 AudioSet scores ``[n, 527]`` for inputs ``[n, 1, 128, frames]``.

        Tests and evaluation only: these include Speech, which must never leave the node.
        """
        batch = np.ascontiguousarray(patches, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:3] != (1, frontend.N_MELS):
            raise ClassifierError(
                f"mn04 expects inputs [n, 1, {frontend.N_MELS}, frames], got {list(batch.shape)}"
            )
        if batch.shape[0] == 0:
            return np.zeros((0, N_AUDIOSET), dtype=np.float32)
        out = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        return np.asarray(out, dtype=np.float32)

    def audioset_scores(self, frames: FloatArray) -> FloatArray:
        """Raw 527 AudioSet scores of windows ``[n, 32000]`` (tests and evaluation only)."""
        return self.raw_scores(self.patches(frames))

    def mapped(self, audioset_scores: FloatArray) -> FloatArray:
        """ouie scores ``[n, 8]`` of raw AudioSet scores ``[n, 527]``."""
        return self._mapper(audioset_scores)

    def scores(self, frames: FloatArray) -> FloatArray:
        return self.mapped(self.audioset_scores(frames))


def create(settings: Mn04Settings) -> Mn04Classifier:
    return Mn04Classifier(
        model_dir=settings.model_dir,
        threads=settings.threads,
        hop_s=settings.hop_s,
        providers=providers_for(settings.device),
    )
