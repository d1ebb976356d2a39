"""Deliveries that failed for good, kept so the console can list and replay them."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import AwareDatetime, Field

from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now


class DeadLetter(StrictModel):
    output_id: str
    delivery_id: str
    url: str
    event: str
    incident_id: str
    body: str
    attempts: int
    last_error: str
    at: AwareDatetime = Field(default_factory=utc_now)


class DeadLetterStore(Protocol):
    def add(self, letter: DeadLetter) -> None: ...
    def list(self) -> list[DeadLetter]: ...


class MemoryDeadLetters:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def add(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def list(self) -> list[DeadLetter]:
        return list(self.letters)


class JsonlDeadLetters:
    """Dead letters appended to a JSON-lines file (what a hub without a database uses)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, letter: DeadLetter) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(letter.model_dump_json() + "\n")

    def list(self) -> list[DeadLetter]:
        if not self.path.exists():
            return []
        return [
            DeadLetter.model_validate_json(line)
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
