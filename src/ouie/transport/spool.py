"""Store-and-forward: an outbox in a local SQLite file.

Every message the MQTT publisher sends goes through this outbox: it is written here first,
published from here in insertion order, and deleted only once the hub confirmed it stored it
(``confirm``, by ``message_id``, from the hub's ``AckMessage``), or, for a consumer that
sends no receipts, once the broker acknowledged it (``remove``, PUBACK). A node that loses
its broker, or restarts, therefore replays what was not confirmed, in order, as soon as it
is connected again.

The outbox is bounded by ``max_events`` rows. When full, the drop policy makes room:

1. the oldest *status* message goes first (a heartbeat is worthless once superseded);
2. only when no status message is left does the oldest *event* go.

Every drop is counted (``drops``) and logged. Status messages are additionally capped at
``max_status`` rows so a long outage does not fill the outbox with stale heartbeats.

The spool holds JSON message payloads only (metadata, see ``ouie.core.messages``): never audio.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

MessageKind = Literal["event", "status"]
DEFAULT_MAX_STATUS = 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('event', 'status')),
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    message_id TEXT
);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, id);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class SpooledMessage:
    id: int
    kind: MessageKind
    topic: str
    payload: bytes
    message_id: str | None = None


def _payload_message_id(payload: bytes) -> str | None:
    """The ``message_id`` of a JSON message payload, or ``None``."""
    try:
        value = json.loads(payload).get("message_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


@dataclass
class DropCounts:
    status: int = 0
    events: int = 0

    @property
    def total(self) -> int:
        return self.status + self.events


@dataclass
class Spool:
    """A bounded FIFO of outgoing messages in SQLite (one writer: the node's event loop)."""

    path: Path
    max_events: int = 100_000
    max_status: int = DEFAULT_MAX_STATUS
    drops: DropCounts = field(default_factory=DropCounts)
    _db: sqlite3.Connection = field(init=False, repr=False)
    _counts: dict[MessageKind, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_events < 1:
            raise ValueError("max_events must be at least 1")
        if self.max_status < 0:
            raise ValueError("max_status must not be negative")
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed row survives a process crash; a power cut may
        # lose the last transactions, which is the price of not fsyncing every event.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._add_message_ids()
        self._counts = {"event": self._count("event"), "status": self._count("status")}
        log.debug(
            "spool %s: at most %d messages; when full, the oldest status messages go first, "
            "then the oldest events",
            self.path,
            self.max_events,
        )
        if len(self):
            log.info(
                "spool %s holds %d events and %d status messages from before; replaying them",
                self.path,
                self._counts["event"],
                self._counts["status"],
            )

    def _add_message_ids(self) -> None:
        """Spool files written before hub receipts existed have no ``message_id`` column:
        add it, and fill it from the payloads, so their backlog can be confirmed too."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        with self._transaction():
            if "message_id" not in columns:
                self._db.execute("ALTER TABLE outbox ADD COLUMN message_id TEXT")
            missing = self._db.execute(
                "SELECT id, payload FROM outbox WHERE message_id IS NULL"
            ).fetchall()
            for row_id, payload in missing:
                self._db.execute(
                    "UPDATE outbox SET message_id = ? WHERE id = ?",
                    (_payload_message_id(bytes(payload)), row_id),
                )
            self._db.execute("CREATE INDEX IF NOT EXISTS outbox_message ON outbox (message_id)")

    def _count(self, kind: MessageKind) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM outbox WHERE kind = ?", (kind,)).fetchone()
        return int(row[0])

    def __len__(self) -> int:
        return self._counts["event"] + self._counts["status"]

    @property
    def events(self) -> int:
        """Events waiting to be delivered."""
        return self._counts["event"]

    @property
    def status_messages(self) -> int:
        return self._counts["status"]

    def append(
        self, kind: MessageKind, topic: str, payload: bytes, message_id: str | None = None
    ) -> int | None:
        """Store one message at the end of the queue and return its id.

        ``message_id`` is what the hub's receipt names (read from the JSON payload when not
        given).

        Makes room by the drop policy when full. Returns ``None`` when the message itself
        is the one dropped: a status message arriving while the outbox is full of events.
        """
        with self._transaction():
            if kind == "status":
                if self.max_status == 0:
                    self.drops.status += 1
                    return None
                if self._counts["status"] >= self.max_status:
                    self._drop_oldest("status", reason="status cap")
            while len(self) >= self.max_events:
                if self._counts["status"] > 0:
                    self._drop_oldest("status", reason="spool full")
                elif kind == "status":
                    self.drops.status += 1
                    log.debug("spool full of events: status message not stored")
                    return None
                else:
                    self._drop_oldest("event", reason="spool full")
            cursor = self._db.execute(
                "INSERT INTO outbox (kind, topic, payload, message_id) VALUES (?, ?, ?, ?)",
                (kind, topic, payload, message_id or _payload_message_id(payload)),
            )
            self._counts[kind] += 1
            assert cursor.lastrowid is not None
            return int(cursor.lastrowid)

    def _drop_oldest(self, kind: MessageKind, reason: str) -> None:
        row = self._db.execute(
            "SELECT id FROM outbox WHERE kind = ? ORDER BY id LIMIT 1", (kind,)
        ).fetchone()
        if row is None:
            return
        self._db.execute("DELETE FROM outbox WHERE id = ?", (row[0],))
        self._counts[kind] -= 1
        if kind == "status":
            self.drops.status += 1
            # Dropping heartbeats is routine during an outage: log it quietly.
            log.debug("spool: dropped oldest status message (%s)", reason)
        else:
            self.drops.events += 1
            if self.drops.events == 1 or self.drops.events % 100 == 0:
                log.warning(
                    "spool full (%d messages): dropped the oldest event; %d events dropped so far",
                    self.max_events,
                    self.drops.events,
                )

    def peek(self, limit: int, after: int = 0) -> list[SpooledMessage]:
        """The oldest ``limit`` messages with an id above ``after``, oldest first. They stay
        until ``remove`` or ``confirm``."""
        rows = self._db.execute(
            "SELECT id, kind, topic, payload, message_id FROM outbox WHERE id > ? "
            "ORDER BY id LIMIT ?",
            (after, limit),
        ).fetchall()
        return [SpooledMessage(int(r[0]), r[1], str(r[2]), bytes(r[3]), r[4]) for r in rows]

    def oldest_id(self) -> int | None:
        """Id of the message at the front of the queue; ``None`` when empty."""
        row = self._db.execute("SELECT MIN(id) FROM outbox").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def confirm(self, message_id: str) -> int | None:
        """Delete the message the hub confirmed it stored; its row id, or ``None`` when no
        message of that id is (still) here, e.g. the receipt for a resent duplicate."""
        with self._transaction():
            row = self._db.execute(
                "SELECT id, kind FROM outbox WHERE message_id = ? ORDER BY id LIMIT 1",
                (message_id,),
            ).fetchone()
            if row is None:
                return None
            self._db.execute("DELETE FROM outbox WHERE id = ?", (row[0],))
            self._counts[row[1]] -= 1
        return int(row[0])

    def remove(self, ids: Iterable[int]) -> int:
        """Delete messages by row id (those the broker acknowledged, when no hub receipt
        is awaited). Returns how many."""
        wanted = list(ids)
        if not wanted:
            return 0
        removed = 0
        with self._transaction():
            for start in range(0, len(wanted), 500):
                batch = wanted[start : start + 500]
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    f"SELECT kind, COUNT(*) FROM outbox WHERE id IN ({marks}) GROUP BY kind",
                    batch,
                ).fetchall()
                self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", batch)
                for kind, count in rows:
                    self._counts[kind] -= int(count)
                    removed += int(count)
        return removed

    def get_meta(self, key: str, default: int = 0) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else int(row[0])

    def set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            self._counts = {"event": self._count("event"), "status": self._count("status")}
            raise
        self._db.execute("COMMIT")
