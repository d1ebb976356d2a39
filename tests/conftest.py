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
