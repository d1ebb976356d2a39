"""Export EfficientAT mn04 to ONNX for the node (``ouie models import`` calls ``export_onnx``).

The ONNX graph takes the normalised log-mel image ``logmel`` float32 ``[batch, 1, 128, frames]``
(``ouie.node.frontends.mn04``; batch and frames dynamic) and gives ``scores`` float32
``[batch, 527]``, sigmoid scores in the order of ``audioset_class_labels_indices.csv``.
After writing it, the export records the digest sidecar (``mn04_as.onnx.sha256``) and checks
that onnxruntime reproduces torch's scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ouie.models import store
from ouie.train.mn04_torch import N_MELS, MN04Scores, build_mn04
from ouie.train.onnx_export import ExportError, export_checked, max_difference

INPUT_NAME = "logmel"
OUTPUT_NAME = "scores"
PT_NAME = "mn04_as_mAP_432.pt"
#: Largest allowed |onnxruntime − torch| on the check inputs (sigmoid scores).
TOLERANCE = 1e-4


def _check_inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(432)
    # Plausible log-mel values (the normalised front-end gives roughly -2 … 1.5).
    return [
        (rng.standard_normal((2, 1, N_MELS, 100)) * 0.6 - 0.6).astype(np.float32),
        (rng.standard_normal((1, 1, N_MELS, 313)) * 0.6 - 0.6).astype(np.float32),
    ]


def verify_onnx(model: torch.nn.Module, onnx_path: Path, tolerance: float = TOLERANCE) -> float:
    """Largest |onnxruntime − torch| over a few inputs; raises ``ExportError`` above tolerance."""
    worst = max_difference(model, onnx_path, _check_inputs(), INPUT_NAME, OUTPUT_NAME)
    if worst > tolerance:
        raise ExportError(
            f"onnxruntime differs from torch by {worst:.2e} (> {tolerance:.0e}) for {onnx_path}"
        )
    return worst


def export_onnx(pt_path: Path, out_path: Path) -> None:
    """Write ``out_path`` (ONNX) and its ``.sha256`` sidecar from the mn04 state_dict."""
    pt_path = Path(pt_path)
    out_path = Path(out_path)
    # Digest check against the known release file; raises ModelFileError naming the file.
    checked = store.resolve(PT_NAME, pt_path.parent) if pt_path.name == PT_NAME else None
    if checked is None:
        expected = store.KNOWN_FILES[PT_NAME].sha256
        actual = store.sha256_of(pt_path)
        if actual != expected:
            raise store.ModelFileError(
                f"model file {pt_path} has sha256 {actual[:12]}…, expected "
                f"{str(expected)[:12]}… ({PT_NAME})"
            )
    model = MN04Scores(build_mn04(pt_path)).eval()
    dummy = torch.zeros((1, 1, N_MELS, 100), dtype=torch.float32)
    export_checked(
        model,
        dummy,
        out_path,
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        dynamic_axes={INPUT_NAME: {0: "batch", 3: "frames"}, OUTPUT_NAME: {0: "batch"}},
        checks=_check_inputs(),
        tolerance=TOLERANCE,
    )
    store.write_sidecar(out_path)
