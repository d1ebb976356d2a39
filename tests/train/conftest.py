"""Fixtures shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ouie.train.teachers import MN04_CLASSES, YAMNET_CLASSES
from tests.train.tiny_cache import class_csv, tiny_cache


def _tiny(tmp_path: Path, unlabelled: bool) -> tuple[Path, Path]:
    models = tmp_path / "models"
    models.mkdir()
    class_csv(models / YAMNET_CLASSES, 521)
    class_csv(models / MN04_CLASSES, 527)
    cache = tmp_path / "cache.npz"
    tiny_cache(cache, np.random.default_rng(3), unlabelled=unlabelled)
    return cache, models


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    return _tiny(tmp_path, unlabelled=False)


@pytest.fixture
def tiny_unlabelled(tmp_path: Path) -> tuple[Path, Path]:
    """``tiny`` with a fifth clip, labelled ``unlabelled`` (windows 24-29)."""
    return _tiny(tmp_path, unlabelled=True)
