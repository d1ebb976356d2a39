"""JSON lines: one message object per line, to standard output or appended to a file.

Events and status messages share the stream; the ``kind`` field tells them apart. Each
line is flushed as it is written so a pipe consumer sees events immediately.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from ouie.core.messages import EventMessage, StatusMessage


class JsonlPublisher:
    def __init__(self, path: Path | None = None, stream: TextIO | None = None) -> None:
        if path is not None and stream is not None:
            raise ValueError("give a path or a stream, not both")
        self._owned: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._owned = path.open("a", encoding="utf-8")
        self._stream: TextIO | None = self._owned or stream
        self._closed = False

    def _out(self) -> TextIO:
        # Resolved at write time so pytest's capsys (which swaps sys.stdout) sees the lines.
        return self._stream if self._stream is not None else sys.stdout

    def _write(self, message: EventMessage | StatusMessage) -> None:
        if self._closed:
            raise RuntimeError("publisher is closed")
        out = self._out()
        out.write(message.model_dump_json() + "\n")
        out.flush()

    async def publish_event(self, message: EventMessage) -> None:
        self._write(message)

    async def publish_status(self, message: StatusMessage) -> None:
        self._write(message)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owned is not None:
            self._owned.close()
        else:
            self._out().flush()

    @property
    def spooled_events(self) -> int:
        return 0
