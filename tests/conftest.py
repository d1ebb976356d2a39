"""Shared fixtures. Tests that need ../shared skip with a reason on a fresh clone, and fail
instead when OUIE_REQUIRE_SHARED=1 (as in CI), so a missing data folder cannot pass silently."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("OUIE_SHARED_DIR", REPO_ROOT.parent / "shared"))


def _need(path: Path, what: str) -> Path:
    if path.exists():
        return path
    message = f"{what} not found at {path} (set OUIE_SHARED_DIR or clone beside ../shared)"
    if os.environ.get("OUIE_REQUIRE_SHARED") == "1":
        pytest.fail(message + "; OUIE_REQUIRE_SHARED=1 makes this a failure")
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_models_dir() -> Path:
    return _need(SHARED_DIR / "models", "shared models folder")


@pytest.fixture(scope="session")
def dev_data_dir() -> Path:
    return _need(SHARED_DIR / "data" / "dev" / "labels.csv", "dev dataset").parent


@pytest.fixture(scope="session")
def mn04_model_dir(shared_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder holding ``mn04_as.onnx`` (+ sidecar) exported once per session, and the
    AudioSet class list: what ``ouie models import`` leaves behind. Needs torch (train extra)."""
    pytest.importorskip("torch", reason="exporting mn04 to ONNX needs the train extra (torch)")
    import shutil

    from ouie.train.mn04_export import export_onnx

    folder = tmp_path_factory.mktemp("mn04_models")
    export_onnx(shared_models_dir / "mn04_as_mAP_432.pt", folder / "mn04_as.onnx")
    shutil.copy(shared_models_dir / "audioset_class_labels_indices.csv", folder)
    return folder
