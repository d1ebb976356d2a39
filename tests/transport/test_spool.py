from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest

from ouie.transport.spool import Spool


def payloads(spool: Spool) -> list[bytes]:
    return [m.payload for m in spool.peek(10_000)]


def test_fifo_order_and_removal_only_of_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", max_events=100)
    ids = [spool.append("event", "t/events", f"e{i}".encode()) for i in range(10)]
    assert ids == sorted(ids)
    assert spool.events == len(spool) == 10
    head = spool.peek(3)
    assert [m.payload for m in head] == [b"e0", b"e1", b"e2"]
    assert spool.peek(3) == head  # peeking does not consume
    # the broker acknowledged e0 and e2 but not e1: e1 stays, at the front
    assert spool.remove([head[0].id, head[2].id]) == 2
    assert payloads(spool)[:2] == [b"e1", b"e3"]
    assert spool.events == 8
    assert spool.remove([]) == 0
    assert spool.remove([head[0].id]) == 0  # already gone
    spool.close()


def test_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "s.sqlite3"
    spool = Spool(path, max_events=100)
    for i in range(5):
        spool.append("event", "t/events", f"e{i}".encode())
    spool.append("status", "t/status", b"s0")
    spool.set_meta("next_sequence", 5)
    spool.close()
    again = Spool(path, max_events=100)
    assert again.events == 5 and again.status_messages == 1
    assert payloads(again) == [b"e0", b"e1", b"e2", b"e3", b"e4", b"s0"]
    assert again.get_meta("next_sequence") == 5
    assert again.get_meta("missing", 7) == 7
    again.close()


def test_drop_policy_status_first_then_oldest_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "s.sqlite3", max_events=5)
    spool.append("event", "t", b"e0")
    spool.append("status", "t", b"s0")
    spool.append("event", "t", b"e1")
    spool.append("status", "t", b"s1")
    spool.append("event", "t", b"e2")
    # full: new events push out the statuses, oldest first, before any event
    spool.append("event", "t", b"e3")
    assert payloads(spool) == [b"e0", b"e1", b"s1", b"e2", b"e3"]
    spool.append("event", "t", b"e4")
    assert payloads(spool) == [b"e0", b"e1", b"e2", b"e3", b"e4"]
    assert (spool.drops.status, spool.drops.events) == (2, 0)
    # no status left: the oldest event goes, and that is logged as a warning
    with caplog.at_level(logging.WARNING, logger="ouie.transport.spool"):
        spool.append("event", "t", b"e5")
    assert payloads(spool) == [b"e1", b"e2", b"e3", b"e4", b"e5"]
    assert spool.drops.events == 1
    assert "dropped the oldest event" in caplog.text
    # a heartbeat arriving at a spool full of events is itself the one dropped
    assert spool.append("status", "t", b"s2") is None
    assert payloads(spool) == [b"e1", b"e2", b"e3", b"e4", b"e5"]
    assert spool.drops.status == 3 and spool.drops.total == 4
    assert len(spool) == 5
    spool.close()


def test_status_messages_are_capped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", max_events=100, max_status=3)
    spool.append("event", "t", b"e0")
    for i in range(6):
        spool.append("status", "t", f"s{i}".encode())
    assert payloads(spool) == [b"e0", b"s3", b"s4", b"s5"]
    assert spool.drops.status == 3 and spool.drops.events == 0
    spool.close()

    none = Spool(tmp_path / "n.sqlite3", max_events=100, max_status=0)
    assert none.append("status", "t", b"s") is None
    assert len(none) == 0 and none.drops.status == 1
    none.close()


def test_bound_holds_under_many_appends(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", max_events=100)
    for i in range(1000):
        spool.append("status" if i % 10 == 0 else "event", "t", str(i).encode())
    assert len(spool) == 100
    kept = [int(p) for p in payloads(spool)]
    assert kept == sorted(kept) and kept[-1] == 999
    assert spool.drops.total == 900
    # the survivors are the newest events; every status was sacrificed first
    assert all(i % 10 != 0 for i in kept)
    spool.close()


def test_rejects_bad_bounds(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Spool(tmp_path / "a.sqlite3", max_events=0)
    with pytest.raises(ValueError):
        Spool(tmp_path / "b.sqlite3", max_status=-1)


def test_hub_receipts_remove_by_message_id(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", max_events=100)
    ids = [
        spool.append("event", "t/events", json.dumps({"message_id": f"{i:032x}"}).encode())
        for i in range(5)
    ]
    spool.append("status", "t/status", b"{}", message_id="f" * 32)
    assert [m.message_id for m in spool.peek(10)][:2] == [f"{0:032x}", f"{1:032x}"]
    # what is left to send after the first two went out on this connection
    assert [m.id for m in spool.peek(10, after=ids[1])] == [*ids[2:], ids[-1] + 1]
    assert spool.confirm(f"{1:032x}") == ids[1]
    assert spool.confirm(f"{1:032x}") is None  # the receipt for a resent duplicate
    assert spool.confirm("e" * 32) is None
    assert spool.oldest_id() == ids[0]
    assert spool.confirm("f" * 32) == ids[-1] + 1
    assert (spool.events, spool.status_messages) == (4, 0)
    for i in (0, 2, 3, 4):
        spool.confirm(f"{i:032x}")
    assert len(spool) == 0 and spool.oldest_id() is None
    spool.close()


def test_a_spool_from_before_receipts_is_upgraded(tmp_path: Path) -> None:
    """A node updated with shots still spooled: its old rows get their message ids, so the
    hub's receipts can clear them."""
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
        "topic TEXT NOT NULL, payload BLOB NOT NULL);"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    )
    db.execute(
        "INSERT INTO outbox (kind, topic, payload) VALUES ('event', 't/events', ?)",
        (json.dumps({"message_id": "a" * 32}).encode(),),
    )
    db.execute("INSERT INTO outbox (kind, topic, payload) VALUES ('status', 't/status', x'00')")
    db.commit()
    db.close()
    spool = Spool(path)
    assert [m.message_id for m in spool.peek(10)] == ["a" * 32, None]
    assert spool.confirm("a" * 32) == 1
    assert (spool.events, spool.status_messages) == (0, 1)
    spool.close()
