"""Leave-one-source-out builds of a trained backend, for ``ouie eval --split source``.

A builds folder holds one sub-folder per build: the model files of the backend
(``ouie_compact.onnx`` and ``ouie_compact.sha256`` for ouie-compact) and a ``build.json``::

    {"excluded_sources": ["owner/repo", ...],
     "thresholds": {"gunshot": 0.4, ...},   # optional: chosen without those sources
     "model_id": "...",
     "trained_sources": [...], "teachers": [...]}   # optional, for the record

The build for a held-out source S is the first sub-folder, in sorted name order, whose
``excluded_sources`` lists S; a source no build excludes is skipped for that backend.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ouie.config.node import Probability
from ouie.core.labels import EventLabel
from ouie.node.classifiers.compact import DIGEST_FILE, MODEL_FILE

BUILD_FILE = "build.json"
#: Files a build folder must hold besides build.json (ouie-compact's model and digest).
MODEL_FILES = (MODEL_FILE, DIGEST_FILE)


class BuildError(ValueError):
    """A builds folder or one of its build.json files is unusable (one line, for the user)."""


class BuildInfo(BaseModel):
    """``build.json``: which sources a build never saw, and its own event thresholds."""

    model_config = ConfigDict(extra="forbid")

    excluded_sources: list[str] = Field(
        min_length=1, description="source_repo values left out of training and tuning"
    )
    thresholds: dict[EventLabel, Probability] | None = Field(
        default=None, description="per-label event thresholds chosen without those sources"
    )
    model_id: str = Field(min_length=1, description="the build's name, as its maker calls it")
    trained_sources: list[str] = Field(
        default_factory=list, description="source_repo values the build was trained on"
    )
    teachers: list[str] = Field(
        default_factory=list, description="model ids of the teachers it was distilled from"
    )


@dataclass(frozen=True)
class Build:
    name: str  # the sub-folder's name
    path: Path
    info: BuildInfo


def read_build(folder: Path) -> Build:
    """The build in ``folder``; raises BuildError naming the file and the first problem."""
    where = folder / BUILD_FILE
    if not where.is_file():
        raise BuildError(f"build {folder} has no {BUILD_FILE}")
    for name in MODEL_FILES:
        if not (folder / name).is_file():
            raise BuildError(f"build {folder} lacks {name}")
    try:
        info = BuildInfo.model_validate(json.loads(where.read_text(encoding="utf-8")))
    except OSError as exc:
        raise BuildError(f"cannot read {where}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise BuildError(f"{where} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise BuildError(f"{where}: {key}: {first['msg']}") from exc
    return Build(folder.name, folder, info)


def load_builds(directory: Path) -> list[Build]:
    """Every build under ``directory`` (its sub-folders, hidden ones ignored), sorted by name."""
    if not directory.exists():
        raise BuildError(f"--builds {directory}: no such directory")
    if not directory.is_dir():
        raise BuildError(f"--builds {directory}: not a directory")
    folders = sorted(
        (p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    if not folders:
        raise BuildError(f"--builds {directory} holds no build folders")
    return [read_build(folder) for folder in folders]


def build_for(source: str, builds: Sequence[Build]) -> Build | None:
    """The first build (sorted folder order) trained without ``source``, or None."""
    for build in sorted(builds, key=lambda b: b.name):
        if source in build.info.excluded_sources:
            return build
    return None
