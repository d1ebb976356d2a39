"""Which sensor messages the hub believes: signature, freshness, replay; refusals counted.

A sensor registered with a signing key (``ouie sensor add``) must sign every event and
status with it (``ouie.transport.signing``), and each must be new:

* an event's ``sequence`` must be one the hub has not stored for the sensor yet, and not
  older than the last ``SEQUENCE_WINDOW`` sequences: the highest stored sequence
  (``sensors.last_sequence``) and a bitmap of which of the ones below it were stored
  (``sensors.sequence_seen``) are persisted, so a message the broker dropped and the node
  resent after later ones is stored once, however late within the window, while a stored
  sequence or one below the window is refused (a resent message is caught earlier, as a
  duplicate of its ``message_id``); its onset must lie within ``ingest.replay_window_s``;
* a status's ``sent_at`` must be later than the last accepted one (``last_status_at``) and
  within the window, so an old heartbeat cannot turn an offline sensor "ok" again.

The signature covers ``message_id``, ``sequence`` and the times, so none can be changed on
an old message. A sensor without a key is accepted unsigned only while
``ingest.require_signatures`` is false (the in-process demo, development set-ups);
nothing about its messages is then proven, and they are not checked for replays either.

Every refusal attributable to a registered sensor is counted per sensor and reason
(``sensor_rejections``, shown in the console) and audited at most once per reason and
``ingest.rejection_audit_interval_s``, so a flood of forgeries cannot flood the chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ouie.config.hub import IngestSettings
from ouie.core.messages import EventMessage, ImpulseOnsetMessage, StatusMessage
from ouie.hub import audit
from ouie.hub.db import Sensor, SensorRejection
from ouie.hub.registry import SensorInfo, SensorRegistry

#: reason → what it means (docs/security.md; the console shows the reason)
REASONS = {
    "unsigned": "no signature, from a sensor that has a key or while signatures are required",
    "bad_signature": "the signature does not match the sensor's key",
    "replay": "a sequence already stored for the sensor, or older than its window",
    "clock_stale": "older than ingest.replay_window_s (signed) or ingest.max_age_s",
}


@dataclass(frozen=True)
class Refusal:
    reason: str
    detail: str


def authenticity(
    settings: IngestSettings,
    sensor: SensorInfo,
    data: Mapping[str, Any],
    message: EventMessage | StatusMessage | ImpulseOnsetMessage,
    now: datetime,
) -> Refusal | None:
    """Whether ``message`` (parsed from ``data``) is signed by ``sensor`` and fresh enough."""
    if not sensor.keyed:
        if settings.require_signatures:
            return Refusal("unsigned", "no signing key is registered for this sensor")
        return None
    if message.signature is None:
        return Refusal("unsigned", "the sensor has a signing key; this message is unsigned")
    if sensor.signing_key is None or not sensor.signing_key.verify(data):
        return Refusal("bad_signature", "signature does not match the sensor's key")
    when = message.onset if isinstance(message, EventMessage) else message.sent_at
    if when < now - timedelta(seconds=settings.replay_window_s):
        return Refusal(
            "clock_stale",
            f"{when.isoformat()} is older than replay_window_s ({settings.replay_window_s:g} s)",
        )
    return None


#: How many sequence numbers below a sensor's highest stored one are tracked one by one: a
#: late event within it is stored if its sequence was not, one further back is refused.
#: 1024 bits (128 bytes a sensor) is far more than the messages a node can send within
#: ``ingest.replay_window_s``, after which a signed event is refused as stale anyway.
SEQUENCE_WINDOW = 1024


@dataclass
class SequenceWindow:
    """The sequences stored for one sensor: ``last``, the highest, and ``seen``, a bitmap
    whose bit ``i`` says sequence ``last - i`` was stored (bit 0: ``last`` itself)."""

    last: int | None
    seen: int
    size: int = SEQUENCE_WINDOW

    @classmethod
    def load(
        cls, last: int | None, raw: bytes | None, size: int = SEQUENCE_WINDOW
    ) -> SequenceWindow:
        if last is None:
            return cls(None, 0, size)
        if raw is None:
            # written before the window existed (or by an unkeyed sensor): only "above the
            # last" was known, so every sequence up to it counts as stored
            return cls(last, (1 << size) - 1, size)
        return cls(last, int.from_bytes(raw, "big") & ((1 << size) - 1) | 1, size)

    def dump(self) -> bytes:
        return self.seen.to_bytes((self.size + 7) // 8, "big")

    def admit(self, sequence: int) -> Refusal | None:
        """Mark ``sequence`` stored, or say why it is a replay."""
        if self.last is None or sequence > self.last:
            shift = self.size if self.last is None else sequence - self.last
            self.seen = ((self.seen << shift) | 1) & ((1 << self.size) - 1)
            self.last = sequence
            return None
        back = self.last - sequence
        if back >= self.size:
            return Refusal(
                "replay",
                f"sequence {sequence} is older than the last {self.size} below {self.last}",
            )
        if self.seen >> back & 1:
            return Refusal("replay", f"sequence {sequence} was already stored")
        self.seen |= 1 << back
        return None


class ReplayGuard:
    """The stored sequences (``SequenceWindow``) and last status time of the batch's keyed
    sensors, locked for the transaction (``SELECT … FOR UPDATE``; SQLite's ``BEGIN
    IMMEDIATE`` serialises anyway), so two hub workers cannot both accept the same
    sequence number."""

    def __init__(
        self, session: Session, sensor_pks: Iterable[int], window: int = SEQUENCE_WINDOW
    ) -> None:
        pks = sorted(set(sensor_pks))
        self.windows: dict[int, SequenceWindow] = {}
        self.changed: set[int] = set()
        self.last_status_at: dict[int, datetime | None] = {}
        self.last_status_id: dict[int, str | None] = {}
        if not pks:
            return
        rows = session.execute(
            select(
                Sensor.id,
                Sensor.last_sequence,
                Sensor.sequence_seen,
                Sensor.last_status_at,
                Sensor.last_status,
            )
            .where(Sensor.id.in_(pks))
            .order_by(Sensor.id)
            .with_for_update()
        ).all()
        for pk, sequence, seen, status_at, status in rows:
            self.windows[pk] = SequenceWindow.load(sequence, seen, window)
            self.last_status_at[pk] = status_at
            message_id = status.get("message_id") if isinstance(status, dict) else None
            self.last_status_id[pk] = message_id if isinstance(message_id, str) else None

    def admit_event(self, sensor_pk: int, message: EventMessage) -> Refusal | None:
        """Admit an event whose sequence was not stored yet (in any order within the
        window); the caller stores every admitted event in this transaction."""
        window = self.windows.setdefault(sensor_pk, SequenceWindow(None, 0))
        refusal = window.admit(message.sequence)
        if refusal is None:
            self.changed.add(sensor_pk)
        return refusal

    def marks(self) -> list[dict[str, Any]]:
        """``sensors`` rows to update for the sensors whose window moved."""
        return [
            {
                "id": pk,
                "last_sequence": self.windows[pk].last,
                "sequence_seen": self.windows[pk].dump(),
            }
            for pk in sorted(self.changed)
        ]

    def admit_status(self, sensor_pk: int, message: StatusMessage) -> Refusal | str | None:
        """``None``: admitted; ``"duplicate"``: the very status stored last, resent."""
        if self.last_status_id.get(sensor_pk) == message.message_id:
            return "duplicate"
        last = self.last_status_at.get(sensor_pk)
        if last is not None and message.sent_at <= last:
            return Refusal("replay", f"sent_at {message.sent_at.isoformat()} <= {last}")
        self.last_status_at[sensor_pk] = message.sent_at
        self.last_status_id[sensor_pk] = message.message_id
        return None


def attribute(registry: SensorRegistry, topic: str) -> SensorInfo | None:
    """The registered sensor whose topic a refused message came on: the broker's ACL lets
    only that sensor publish there, and HTTP ingest builds it from the sensor's token."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "ouie" or parts[1] != "v1":
        return None
    return registry.get(parts[2], parts[3])


def count_rejections(
    session: Session,
    registry: SensorRegistry,
    refused: Iterable[tuple[int, str, str]],
    now: datetime,
    audit_interval_s: float,
) -> None:
    """Add ``(sensor_pk, reason, detail)`` refusals to the per-sensor counts; audit the
    counts of a (sensor, reason) at most once per ``audit_interval_s``."""
    tally: dict[tuple[int, str], tuple[int, str]] = {}
    for pk, reason, detail in refused:
        n, _ = tally.get((pk, reason), (0, ""))
        tally[(pk, reason)] = (n + 1, detail)
    if not tally:
        return
    pks = sorted({pk for pk, _ in tally})
    rows = {
        (row.sensor_pk, row.reason): row
        for row in session.execute(
            select(SensorRejection)
            .where(SensorRejection.sensor_pk.in_(pks))
            .order_by(SensorRejection.sensor_pk, SensorRejection.reason)
            .with_for_update()
        ).scalars()
    }
    events: list[audit.AuditEvent] = []
    for (pk, reason), (n, detail) in sorted(tally.items()):
        row = rows.get((pk, reason))
        if row is None:
            row = SensorRejection(
                sensor_pk=pk,
                reason=reason,
                count=0,
                first_at=now,
                last_at=now,
                last_detail="",
                audited_at=None,
                audited_count=0,
            )
            session.add(row)
        row.count += n
        row.last_at = now
        row.last_detail = detail[:300]
        due = row.audited_at is None or (now - row.audited_at).total_seconds() >= audit_interval_s
        sensor = registry.by_pk(pk)
        if due and sensor is not None:
            events.append(
                audit.AuditEvent(
                    actor="ingest",
                    action="sensor.messages_rejected",
                    object_type="sensor",
                    object_id=f"{sensor.site}/{sensor.sensor_id}",
                    detail={
                        "reason": reason,
                        "count": row.count - row.audited_count,
                        "total": row.count,
                        "last": row.last_detail[:200],
                    },
                )
            )
            row.audited_at = now
            row.audited_count = row.count
    session.flush()
    audit.record(session, *events, at=now)


__all__ = [
    "REASONS",
    "SEQUENCE_WINDOW",
    "Refusal",
    "ReplayGuard",
    "SequenceWindow",
    "attribute",
    "authenticity",
    "count_rejections",
]
