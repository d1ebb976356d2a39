"""ouie-compact backend: ouie's own small CNN, bundled with the package (the default).

The model (``ouie/models_bundled/ouie_compact.onnx``, trained by ``ouie.train.compact``,
described in ``DATA_CARD.md`` beside it) takes YAMNet-style log-mel patches ``[n, 96, 64]``
from ``ouie.node.frontends.yamnet`` and returns eight sigmoid scores per patch in
``EVENT_LABELS`` order, so nothing needs mapping and no other class exists to leak. A window
is 15,600 samples (0.975 s) at 16 kHz; the default hop is 0.25 s, which keeps detection
latency under a second. It runs on onnxruntime only (no torch, no TFLite) and needs no
files outside the package, so ``ouie detect`` works on a fresh clone.

The file is checked against ``ouie_compact.sha256`` before it is loaded. A model trained
locally can replace the bundled one: put ``ouie_compact.onnx`` and ``ouie_compact.sha256``
in a folder and point ``classifier.model_dir`` at it.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ouie.config.classifiers import ClassifierSettings
from ouie.core.labels import EVENT_LABELS
from ouie.models.store import ModelFileError
from ouie.node.classifiers.base import ClassifierBase, ClassifierError, FloatArray
from ouie.node.frontends import yamnet as frontend

BACKEND = "compact"
DESCRIPTION = "ouie-compact: ouie's own small CNN on log-mel patches (bundled, onnxruntime)"

MODEL_FILE = "ouie_compact.onnx"
DIGEST_FILE = "ouie_compact.sha256"
BUNDLE_PACKAGE = "ouie"
BUNDLE_FOLDER = "models_bundled"
INPUT_NAME = "logmel"
OUTPUT_NAME = "scores"

SAMPLE_RATE = frontend.SAMPLE_RATE
WINDOW_SAMPLES = frontend.PATCH_SAMPLES
DEFAULT_HOP_S = 0.25
BATCH = 64  # patches per onnxruntime call


def model_id_for(sha256_hex: str) -> str:
    """ouie-compact's model id: the family and the first 8 hex digits of the file's sha256."""
    return f"ouie-compact@{sha256_hex[:8]}"


HOW_TO_GET = (
    "reinstall ouie (the model ships inside the package), or retrain it with "
    "`python -m ouie.train.compact --data DIR --out DIR` (needs the train extra)"
)


def _read_digest(text: str, where: str) -> str:
    fields = text.split()
    if not fields or len(fields[0]) != 64:
        raise ModelFileError(f"{where} does not hold a sha256 digest: {HOW_TO_GET}")
    return fields[0].lower()


def verified_model_bytes(model: bytes, digest_text: str, where: str) -> bytes:
    """``model`` after checking it against the digest file's text; raises ModelFileError."""
    expected = _read_digest(digest_text, f"{where}/{DIGEST_FILE}")
    actual = hashlib.sha256(model).hexdigest()
    if actual != expected:
        raise ModelFileError(
            f"model file {where}/{MODEL_FILE} has sha256 {actual[:12]}…, expected "
            f"{expected[:12]}… ({DIGEST_FILE}): the file is damaged or not the expected "
            f"model; {HOW_TO_GET}"
        )
    return model


def load_model_bytes(directory: Path | None = None) -> bytes:
    """The verified model from ``directory``, or the one bundled with the package."""
    if directory is not None:
        model_path, digest_path = directory / MODEL_FILE, directory / DIGEST_FILE
        for path in (model_path, digest_path):
            if not path.is_file():
                raise ModelFileError(
                    f"model file {path.name} not found in {directory}: {HOW_TO_GET}"
                )
        return verified_model_bytes(
            model_path.read_bytes(), digest_path.read_text(encoding="utf-8"), str(directory)
        )
    bundle = resources.files(BUNDLE_PACKAGE).joinpath(BUNDLE_FOLDER)
    where = f"{BUNDLE_PACKAGE}/{BUNDLE_FOLDER}"
    try:
        model = bundle.joinpath(MODEL_FILE).read_bytes()
        digest_text = bundle.joinpath(DIGEST_FILE).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ModelFileError(f"bundled model file missing in {where}: {HOW_TO_GET}") from exc
    return verified_model_bytes(model, digest_text, where)


class CompactClassifier(ClassifierBase):
    """ouie-compact on onnxruntime: windows ``[n, 15600]`` → scores ``[n, 8]``."""

    def __init__(self, model: bytes, threads: int = 1, hop_samples: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self._session: Any = ort.InferenceSession(
                model, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ClassifierError(f"{MODEL_FILE} could not be loaded: {exc}") from exc
        inputs = [(i.name, list(i.shape)) for i in self._session.get_inputs()]
        outputs = [(o.name, list(o.shape)) for o in self._session.get_outputs()]
        if (
            len(inputs) != 1
            or inputs[0][0] != INPUT_NAME
            or inputs[0][1][1:] != [frontend.PATCH_FRAMES, frontend.N_MELS]
            or len(outputs) != 1
            or outputs[0][1][1:] != [len(EVENT_LABELS)]
        ):
            raise ClassifierError(
                f"{MODEL_FILE}: unexpected inputs {inputs} / outputs {outputs}, expected "
                f"{INPUT_NAME} [n, {frontend.PATCH_FRAMES}, {frontend.N_MELS}] → "
                f"[n, {len(EVENT_LABELS)}]"
            )
        super().__init__(
            model_id=model_id_for(hashlib.sha256(model).hexdigest()),
            sample_rate=SAMPLE_RATE,
            window_samples=WINDOW_SAMPLES,
            hop_samples=(
                hop_samples if hop_samples is not None else round(DEFAULT_HOP_S * SAMPLE_RATE)
            ),
        )

    def patches(self, frames: FloatArray) -> FloatArray:
        """Log-mel patches ``[n, 96, 64]`` of windows ``[n, 15600]``."""
        try:
            return frontend.window_patches(frames, "compact")
        except ValueError as exc:
            raise ClassifierError(str(exc)) from exc

    def patch_scores(self, patches: FloatArray) -> FloatArray:
        """Scores ``[n, 8]`` of log-mel patches ``[n, 96, 64]``."""
        batch = np.ascontiguousarray(patches, dtype=np.float32)
        out = np.empty((batch.shape[0], len(EVENT_LABELS)), dtype=np.float32)
        for start in range(0, batch.shape[0], BATCH):
            (scores,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch[start : start + BATCH]})
            out[start : start + BATCH] = scores
        return np.clip(out, 0.0, 1.0)

    def scores(self, frames: FloatArray) -> FloatArray:
        patches = self.patches(frames)
        if patches.shape[0] == 0:
            return np.zeros((0, len(EVENT_LABELS)), dtype=np.float32)
        return self.patch_scores(patches)


def hop_samples_for(settings: ClassifierSettings) -> int:
    hop_s = settings.hop_s if settings.hop_s is not None else DEFAULT_HOP_S
    return max(1, round(hop_s * SAMPLE_RATE))


def load(
    directory: Path | None = None, threads: int = 1, hop_s: float = DEFAULT_HOP_S
) -> CompactClassifier:
    """The classifier from ``directory`` (a trained model) or the bundled one."""
    return CompactClassifier(
        load_model_bytes(directory), threads, max(1, round(hop_s * SAMPLE_RATE))
    )


def create(settings: ClassifierSettings) -> CompactClassifier:
    """The bundled model, or the one in ``settings.model_dir`` when that folder holds one.

    Any backend's settings will do (``CompactSettings`` adds nothing to the common fields):
    the cascade and ``auto`` make their gate with their own."""
    directory = settings.model_dir
    if directory is not None and not (directory / MODEL_FILE).is_file():
        directory = None  # a model dir set for the other backends; compact ships its own
    return CompactClassifier(
        load_model_bytes(directory), settings.threads, hop_samples_for(settings)
    )
