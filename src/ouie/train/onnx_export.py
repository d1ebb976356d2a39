"""Export a torch model to ONNX and prove onnxruntime computes what torch computes.

Both of ouie's exports (ouie-compact and EfficientAT mn04) go through here: write to a
scratch file beside the target, compare onnxruntime with torch on check inputs, and only
then move the file into place, so a bad export never replaces a good model.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

OPSET = 17


class ExportError(RuntimeError):
    """The export ran but its result does not match torch."""


def max_difference(
    model: torch.nn.Module,
    onnx_path: Path,
    checks: Sequence[np.ndarray],
    input_name: str,
    output_name: str,
) -> float:
    """Largest |onnxruntime − torch| over ``checks`` (one thread, CPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    worst = 0.0
    with torch.inference_mode():
        for sample in checks:
            expected = model(torch.from_numpy(sample)).numpy()
            got = np.asarray(session.run([output_name], {input_name: sample})[0])
            if got.shape != expected.shape:
                raise ExportError(f"ONNX output shape {got.shape}, torch {expected.shape}")
            worst = max(worst, float(np.max(np.abs(got - expected))))
    return worst


def export_checked(
    model: torch.nn.Module,
    dummy: torch.Tensor,
    out_path: Path,
    *,
    input_name: str,
    output_name: str,
    dynamic_axes: dict[str, dict[int, str]],
    checks: Sequence[np.ndarray],
    tolerance: float,
) -> float:
    """Export ``model`` to ``out_path``; returns the largest difference to torch on ``checks``
    and raises ``ExportError`` (leaving ``out_path`` untouched) above ``tolerance``."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent) as scratch:
        tmp = Path(scratch) / out_path.name
        with warnings.catch_warnings():
            # torch ≥ 2.9 calls the TorchScript exporter legacy; the dynamo exporter needs
            # onnxscript, which the train extra does not carry. The graphs are plain
            # convolutions and are checked against torch below.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            torch.onnx.export(
                model,
                (dummy,),
                str(tmp),
                dynamo=False,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes=dynamic_axes,
                opset_version=OPSET,
                do_constant_folding=True,
            )
        worst = max_difference(model, tmp, checks, input_name, output_name)
        if worst > tolerance:
            raise ExportError(
                f"onnxruntime differs from torch by {worst:.2e} (> {tolerance:.0e}) for {out_path}"
            )
        tmp.replace(out_path)
    return worst
