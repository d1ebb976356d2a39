"""What the model directory holds: each file's status against its expected sha256, and
which files each classifier backend needs (its module's ``MODEL_FILES``)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ouie.models.store import KNOWN_FILES, expected_digest, sha256_of, sidecar_digest


class FileStatus(StrEnum):
    PRESENT = "present"
    MISSING = "missing"
    BAD_DIGEST = "bad digest"
    NO_DIGEST = "no digest"  # a local file (ONNX export) without its .sha256 sidecar


@dataclass(frozen=True)
class FileCheck:
    name: str
    path: Path
    status: FileStatus
    actual: str | None = None
    expected: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is FileStatus.PRESENT


def check_file(name: str, directory: Path) -> FileCheck:
    path = directory / name
    if not path.is_file():
        return FileCheck(name, path, FileStatus.MISSING)
    expected = expected_digest(name, path)
    actual = sha256_of(path)
    if expected is None:
        return FileCheck(name, path, FileStatus.NO_DIGEST, actual=actual)
    status = FileStatus.PRESENT if actual == expected else FileStatus.BAD_DIGEST
    return FileCheck(name, path, status, actual=actual, expected=expected)


def files_to_verify(directory: Path) -> list[str]:
    """Known files present in ``directory`` plus any file that has a ``.sha256`` sidecar."""
    names = {name for name in KNOWN_FILES if (directory / name).is_file()}
    if directory.is_dir():
        for sidecar in directory.glob("*.sha256"):
            target = sidecar.with_name(sidecar.name.removesuffix(".sha256"))
            if target.is_file() and sidecar_digest(target) == sidecar:
                names.add(target.name)
    return sorted(names)


@dataclass(frozen=True)
class BackendInfo:
    name: str
    description: str
    model_files: tuple[str, ...]
    error: str | None = None  # the backend module could not be imported


def backend_info(name: str) -> BackendInfo:
    try:
        module = importlib.import_module(f"ouie.node.classifiers.{name}")
    except Exception as error:  # a broken or half-installed backend must not break `list`
        return BackendInfo(name, "", (), error=f"{type(error).__name__}: {error}")
    files = tuple(str(f) for f in getattr(module, "MODEL_FILES", ()))
    return BackendInfo(name, str(getattr(module, "DESCRIPTION", "")), files)
