"""Shared fixtures, and the plugin that lets tests say what they need (tests/_services.py).

Tests that need ../shared skip with a reason on a fresh clone and fail instead when
OUIE_REQUIRE_SHARED=1; tests that need a service (PostgreSQL, Mosquitto, Chromium, espeak-ng,
fanotify, ...) do the same under OUIE_REQUIRE_SERVICES=1. CI (.ci/run) sets both, so a
missing data folder or service cannot pass silently."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._services import (  # noqa: F401  (pytest hooks: the needs(...) marker)
    need,
    pytest_configure,
    pytest_runtest_setup,
    require_shared,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("OUIE_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session", autouse=True)
def _no_installed_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """An empty default model directory for every test. The node's default backend, ``auto``,
    runs the cascade where the AudioSet teachers are installed: without this, a developer who
    ran ``ouie models import`` would test another classifier than a fresh clone does. Tests
    that need the teachers name their folder (``shared_models_dir``) or set OUIE_MODEL_DIR."""
    saved = os.environ.get("OUIE_MODEL_DIR")
    os.environ["OUIE_MODEL_DIR"] = str(tmp_path_factory.mktemp("no-installed-models"))
    yield
    if saved is None:
        os.environ.pop("OUIE_MODEL_DIR", None)
    else:
        os.environ["OUIE_MODEL_DIR"] = saved


@pytest.fixture(scope="session")
def shared_models_dir() -> Path:
    return require_shared(SHARED_DIR / "models", "shared models folder")


@pytest.fixture(scope="session")
def dev_data_dir() -> Path:
    return require_shared(SHARED_DIR / "data" / "dev" / "labels.csv", "dev dataset").parent


@pytest.fixture(scope="session")
def mn04_model_dir(shared_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder holding ``mn04_as.onnx`` (+ sidecar) exported once per session, and the
    AudioSet class list: what ``ouie models import`` leaves behind. Needs torch (train extra)."""
    need("torch")  # exporting mn04 to ONNX needs the train extra
    import shutil

    from ouie.train.mn04_export import export_onnx

    folder = tmp_path_factory.mktemp("mn04_models")
    export_onnx(shared_models_dir / "mn04_as_mAP_432.pt", folder / "mn04_as.onnx")
    shutil.copy(shared_models_dir / "audioset_class_labels_indices.csv", folder)
    return folder
