"""Datasets as a directory with a ``labels.csv`` and the folds used to keep tests honest.

``labels.csv`` (UTF-8, header row): required ``file`` (relative to the CSV's directory) and
``label``; optional ``onset_s``/``offset_s`` (empty: the event spans the whole clip). Other
columns are ignored, except ``source_repo`` which, when present, is part of the fold key and
the unit of the source-disjoint split (``ouie eval --split source``).

Folds group clips by *original recording*, not by file: the same freesound upload or
ESC-50 source clip cut into several files always lands in one fold, so a model is never
tested on a sibling of a training clip.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ouie.core.labels import is_target

N_FOLDS = 5

# ESC-50 style "<fold>-<source id>-<take>-<class>" and freesound "<id>__<user>__<name>".
_ESC_STYLE = re.compile(r"^\d+-(?P<source>[0-9A-Za-z]+)-[A-Z]-\d+$")
_FREESOUND_STYLE = re.compile(r"^(?P<source>\d+)__")


class DatasetError(ValueError):
    """The dataset directory or its labels.csv is unusable."""


@dataclass(frozen=True)
class Clip:
    path: Path
    file: str  # as written in labels.csv
    label: str
    onset_s: float | None
    offset_s: float | None
    group: str  # original recording
    fold: int
    source_repo: str = ""  # the recording source (labels.csv ``source_repo``), "" when absent

    @property
    def is_target(self) -> bool:
        return is_target(self.label)


def recording_group(file: str, source_repo: str = "") -> str:
    stem = Path(file).stem
    for pattern in (_ESC_STYLE, _FREESOUND_STYLE):
        match = pattern.match(stem)
        if match:
            return f"{source_repo}:{match.group('source')}"
    return f"{source_repo}:{Path(file).parent}/{stem}"


def fold_of(group: str, n_folds: int = N_FOLDS) -> int:
    digest = hashlib.sha1(group.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % n_folds


def _optional_float(value: str | None, column: str, line: int) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise DatasetError(f"labels.csv line {line}: {column} {value!r} is not a number") from exc


def load_dataset(directory: Path, *, check_files: bool = True) -> list[Clip]:
    csv_path = directory / "labels.csv"
    if not csv_path.is_file():
        raise DatasetError(f"{directory} has no labels.csv")
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or ())
        missing = {"file", "label"} - columns
        if missing:
            raise DatasetError(f"{csv_path} lacks required column(s): {', '.join(sorted(missing))}")
        clips: list[Clip] = []
        for line, row in enumerate(reader, start=2):
            file = (row.get("file") or "").strip()
            label = (row.get("label") or "").strip()
            if not file or not label:
                raise DatasetError(f"{csv_path} line {line}: empty file or label")
            path = directory / file
            if check_files and not path.is_file():
                raise DatasetError(f"{csv_path} line {line}: {file} does not exist")
            source_repo = (row.get("source_repo") or "").strip()
            group = recording_group(file, source_repo)
            clips.append(
                Clip(
                    path=path,
                    file=file,
                    label=label,
                    onset_s=_optional_float(row.get("onset_s"), "onset_s", line),
                    offset_s=_optional_float(row.get("offset_s"), "offset_s", line),
                    group=group,
                    fold=fold_of(group),
                    source_repo=source_repo,
                )
            )
    if not clips:
        raise DatasetError(f"{csv_path} lists no clips")
    return clips


def select_folds(clips: Iterable[Clip], folds: Iterable[int]) -> list[Clip]:
    wanted = set(folds)
    return [clip for clip in clips if clip.fold in wanted]
