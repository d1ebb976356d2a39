"""Hash-chained audit log.

Services describe what happened as domain events (``AuditEvent``: who, did what, to which
object, with which non-personal detail) and hand them to ``record`` inside the transaction
that makes the change, so an action and its audit entry commit together or not at all.

Each entry stores the hash of the previous one; its own hash covers its sequence number,
time, actor, action, object and detail plus that previous hash. ``verify`` recomputes the
chain and reports the first edited, deleted, inserted or reordered entry. ``audit_head``
holds the last sequence number and hash and is row-locked while appending, so concurrent
hub workers append one at a time and a deleted tail is detected too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

# the record type is core's, so verify can build records without importing the hub
from ouie.core.audit import AuditEvent as AuditEvent
from ouie.core.timebase import utc_now
from ouie.hub.db import AuditEntry, AuditHead, dumps

GENESIS = "0" * 64


def entry_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: str,
    prev_hash: str,
) -> str:
    body = dumps(
        {
            "seq": seq,
            "at": at.isoformat(),
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "detail": detail,
            "prev": prev_hash,
        }
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _lock_head(session: Session) -> AuditHead:
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:  # only a schema made without the migrations (which seed this row)
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def record(session: Session, *events: AuditEvent, at: datetime | None = None) -> None:
    """Append ``events`` to the chain in the caller's transaction."""
    if not events:
        return
    head = _lock_head(session)
    when = (at or utc_now()).astimezone(UTC)
    seq, prev = head.seq, head.hash
    for audit_event in events:
        seq += 1
        detail = dumps(audit_event.detail)
        digest = entry_hash(
            seq,
            when,
            audit_event.actor,
            audit_event.action,
            audit_event.object_type,
            audit_event.object_id,
            detail,
            prev,
        )
        session.add(
            AuditEntry(
                seq=seq,
                at=when,
                actor=audit_event.actor,
                action=audit_event.action,
                object_type=audit_event.object_type,
                object_id=audit_event.object_id,
                detail=detail,
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    head.seq, head.hash = seq, prev


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    problems: list[str]


def _iter_entries(session: Session, batch: int = 5000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows: Sequence[AuditEntry] = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.seq > last)
                .order_by(AuditEntry.seq)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def verify(session: Session, max_problems: int = 20) -> VerifyResult:
    """Walk the whole chain; ``ok`` only if no entry was edited, deleted, added or moved."""
    problems: list[str] = []
    expected_seq, prev, count = 1, GENESIS, 0
    for entry in _iter_entries(session):
        count += 1
        if entry.seq != expected_seq:
            problems.append(
                f"entry {entry.seq}: expected sequence {expected_seq} (entries missing)"
            )
        if entry.prev_hash != prev:
            problems.append(f"entry {entry.seq}: previous-hash link broken (deleted or reordered)")
        digest = entry_hash(
            entry.seq,
            entry.at,
            entry.actor,
            entry.action,
            entry.object_type,
            entry.object_id,
            entry.detail,
            entry.prev_hash,
        )
        if digest != entry.hash:
            problems.append(f"entry {entry.seq}: content does not match its hash (edited)")
        prev = entry.hash
        expected_seq = entry.seq + 1
        if len(problems) >= max_problems:
            break
    head = session.get(AuditHead, 1)
    if len(problems) < max_problems:
        head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
        if head_seq != expected_seq - 1 or head_hash != prev:
            problems.append(
                f"chain ends at entry {expected_seq - 1} but the head says {head_seq} "
                "(entries at the end deleted, or head edited)"
            )
    return VerifyResult(ok=not problems, entries=count, problems=problems)


def export_jsonl(session: Session) -> Iterator[str]:
    """Every entry as one JSON line, in chain order, with its hashes (for offline checks)."""
    for entry in _iter_entries(session):
        yield json.dumps(
            {
                "seq": entry.seq,
                "at": entry.at.isoformat(),
                "actor": entry.actor,
                "action": entry.action,
                "object_type": entry.object_type,
                "object_id": entry.object_id,
                "detail": json.loads(entry.detail),
                "prev_hash": entry.prev_hash,
                "hash": entry.hash,
            },
            ensure_ascii=False,
        )


def count_entries(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(AuditEntry)).scalar_one())
