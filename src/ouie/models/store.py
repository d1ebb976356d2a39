"""Locate model files in the model directory and check them against known sha256 digests.

Weights are never downloaded at run time. Third-party taggers are copied (or imported) by
the operator into ``OUIE_MODEL_DIR`` (default: ``~/.cache/ouie/models``); ouie's own compact
model ships inside the package. Every load checks the digest first, so a truncated or
swapped file is refused with a message naming the file and how to obtain it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

MODEL_DIR_ENV = "OUIE_MODEL_DIR"


@dataclass(frozen=True)
class ModelFile:
    name: str
    sha256: str | None  # None: produced locally (e.g. an ONNX export); digest kept in a sidecar
    how_to_get: str


SHARED_HINT = (
    "copy it from the ouie shared models folder (../shared/models) into {dir}, "
    "or set OUIE_MODEL_DIR to a folder that holds it"
)

KNOWN_FILES: dict[str, ModelFile] = {
    f.name: f
    for f in (
        ModelFile(
            "yamnet_spectra_in.tflite",
            "0a266465c46718f3fcc4137366be82882a8c93bfcc4f0278581a11d11dddcdf9",
            SHARED_HINT,
        ),
        ModelFile(
            "yamnet_class_map.csv",
            "cdf24d193e196d9e95912a2667051ae203e92a2ba09449218ccb40ef787c6df2",
            SHARED_HINT,
        ),
        ModelFile(
            "yamnet_test_audio.bin",
            "5395801333be842af0a9fffe8d699c199c10f83fbaff6f2fb79cbf56121fdc6f",
            SHARED_HINT,
        ),
        ModelFile(
            "yamnet_test_spectra.bin",
            "cec779f36e1ab553a8d38178c1b534deae02876455c06bdac3e2d9b012782fd3",
            SHARED_HINT,
        ),
        ModelFile(
            "mn04_as_mAP_432.pt",
            "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c",
            SHARED_HINT,
        ),
        ModelFile(
            "audioset_class_labels_indices.csv",
            "cdd1049833c4b86127c2773ac0d14a2754b6a6d0d1798002ed5c66e699708429",
            SHARED_HINT,
        ),
        ModelFile(
            "audioset_ontology.json",
            "9c685f4403eecc3ca9be37fd7285cf212feaaea6ff7229d3e7ca89e0d1f2d15d",
            SHARED_HINT,
        ),
        ModelFile(
            "mn04_as.onnx",
            None,
            "create it with `ouie models import --from DIR` (needs the `train` extra for torch)",
        ),
    )
}


class ModelFileError(RuntimeError):
    """A model file is missing or is not the expected file."""


def model_dir() -> Path:
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return root / "ouie" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_digest(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def write_sidecar(path: Path) -> str:
    """Record the digest of a locally produced model file (ONNX export) beside it."""
    digest = sha256_of(path)
    sidecar_digest(path).write_text(f"{digest}  {path.name}\n", encoding="utf-8")
    return digest


def expected_digest(name: str, path: Path) -> str | None:
    known = KNOWN_FILES.get(name)
    if known is not None and known.sha256 is not None:
        return known.sha256
    sidecar = sidecar_digest(path)
    if sidecar.exists():
        return sidecar.read_text(encoding="utf-8").split()[0]
    return None


def resolve(name: str, directory: Path | None = None) -> Path:
    """Path of model file ``name`` after checking it exists and matches its digest."""
    folder = directory if directory is not None else model_dir()
    path = folder / name
    known = KNOWN_FILES.get(name)
    hint = (known.how_to_get if known else "put it in the model directory").format(dir=folder)
    if not path.is_file():
        raise ModelFileError(f"model file {name} not found in {folder}: {hint}")
    expected = expected_digest(name, path)
    if expected is None:
        raise ModelFileError(
            f"model file {path} has no known sha256 (no entry and no {path.name}.sha256): {hint}"
        )
    actual = sha256_of(path)
    if actual != expected:
        raise ModelFileError(
            f"model file {path} has sha256 {actual[:12]}…, expected {expected[:12]}…: "
            f"the file is damaged or not the expected model; {hint}"
        )
    return path


def short_digest(path: Path) -> str:
    return sha256_of(path)[:8]
