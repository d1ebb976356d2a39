"""The data of ``ouie eval --split source``, by ``source_repo`` across every ``--data`` dir."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ouie.eval.audio import clip_duration
from ouie.eval.dataset import Clip
from ouie.eval.runner import EvalError, read_data_dir
from ouie.node.audio_io import AudioInputError


@dataclass(frozen=True)
class Item:
    """A readable clip of the data and where it came from."""

    clip: Clip
    data_dir: Path
    duration_s: float

    @property
    def source(self) -> str:
        return self.clip.source_repo


@dataclass(frozen=True)
class SourceData:
    source: str
    items: tuple[Item, ...]
    listed: int  # clips labels.csv lists for the source (readable or not)

    @property
    def data_dirs(self) -> list[str]:
        return sorted({str(item.data_dir) for item in self.items})


def load_items(data_dirs: Sequence[Path]) -> tuple[list[Item], dict[str, int], list[str]]:
    """Readable clips of every ``--data`` dir, clips listed per source, and skipped files."""
    items: list[Item] = []
    listed: dict[str, int] = {}
    skipped: list[str] = []
    for directory in data_dirs:
        clips = read_data_dir(directory)
        unnamed = [c.file for c in clips if not c.source_repo]
        if unnamed:
            raise EvalError(
                f"{directory / 'labels.csv'}: {len(unnamed)} clip(s) have no source_repo "
                f"(--split source needs it), e.g. {unnamed[0]}"
            )
        for clip in clips:
            listed[clip.source_repo] = listed.get(clip.source_repo, 0) + 1
            try:
                items.append(Item(clip, directory, clip_duration(clip.path)))
            except AudioInputError as exc:
                skipped.append(str(exc))
    return items, listed, skipped


def group_by_source(items: Sequence[Item], listed: Mapping[str, int]) -> list[SourceData]:
    """One entry per ``source_repo`` (sorted), across every data dir."""
    by_source: dict[str, list[Item]] = {source: [] for source in listed}
    for item in items:
        by_source.setdefault(item.source, []).append(item)
    return [
        SourceData(source, tuple(by_source[source]), listed.get(source, len(by_source[source])))
        for source in sorted(by_source)
    ]
