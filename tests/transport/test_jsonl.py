from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from ouie.core.messages import EventMessage, StatusMessage
from ouie.transport.base import Publisher
from ouie.transport.jsonl import JsonlPublisher
from tests.transport.messages import event, status


def test_file_gets_one_json_object_per_line_appended(tmp_path: Path) -> None:
    path = tmp_path / "out" / "events.jsonl"

    async def main() -> None:
        publisher = JsonlPublisher(path)
        assert isinstance(publisher, Publisher)
        await publisher.publish_event(event(0))
        await publisher.publish_status(status(1))
        await publisher.publish_event(event(1))
        assert publisher.spooled_events == 0
        await publisher.close()
        await publisher.close()  # idempotent
        with pytest.raises(RuntimeError):
            await publisher.publish_event(event(2))
        again = JsonlPublisher(path)
        await again.publish_event(event(2))
        await again.close()

    asyncio.run(main())
    lines = path.read_text(encoding="utf-8").splitlines()
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds == ["event", "status", "event", "event"]
    parsed = [EventMessage.model_validate_json(line) for line in lines if '"event"' in line]
    assert [m.sequence for m in parsed] == [0, 1, 2]
    assert StatusMessage.model_validate_json(lines[1]).uptime_s == 1.0


def test_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> None:
        publisher = JsonlPublisher()
        await publisher.publish_event(event(3))
        await publisher.close()

    asyncio.run(main())
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert EventMessage.model_validate_json(out[0]).sequence == 3


def test_stream_and_path_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        JsonlPublisher(tmp_path / "x.jsonl", stream=io.StringIO())
    stream = io.StringIO()

    async def main() -> None:
        publisher = JsonlPublisher(stream=stream)
        await publisher.publish_status(status())
        await publisher.close()

    asyncio.run(main())
    assert json.loads(stream.getvalue())["kind"] == "status"
