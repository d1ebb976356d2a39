"""The hash-chained audit log: read it (the read is itself audited) and verify the chain."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from ouie.core.model_base import StrictModel
from ouie.hub import audit
from ouie.hub.auth import Perm
from ouie.hub.db import AuditEntry
from ouie.hub.routers.deps import API_PREFIX, Caller, HubDep, access
from ouie.hub.schemas import IsoTime

router = APIRouter(prefix=API_PREFIX, tags=["audit"])


class AuditEntryView(StrictModel):
    seq: int
    at: IsoTime
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any]
    hash: str
    prev_hash: str

    @classmethod
    def of(cls, row: AuditEntry) -> AuditEntryView:
        return cls(
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            detail=json.loads(row.detail),
            hash=row.hash,
            prev_hash=row.prev_hash,
        )


class AuditPage(StrictModel):
    entries: list[AuditEntryView]


class AuditCheck(StrictModel):
    ok: bool
    entries: int
    problems: list[str]


@router.get("/audit", response_model=AuditPage, **access(Perm.AUDIT_READ))
def list_audit(
    hub: HubDep,
    who: Caller,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    object_id: Annotated[str | None, Query(max_length=128)] = None,
) -> AuditPage:
    query = (
        select(AuditEntry).where(AuditEntry.seq > after_seq).order_by(AuditEntry.seq).limit(limit)
    )
    if object_id:
        query = query.where(AuditEntry.object_id == object_id)
    with hub.sessions() as session, session.begin():
        entries = [AuditEntryView.of(row) for row in session.execute(query).scalars()]
        audit.record(
            session,
            audit.AuditEvent(
                who.username, "audit.read", "audit", str(after_seq), {"count": len(entries)}
            ),
        )
    return AuditPage(entries=entries)


@router.get("/audit/verify", response_model=AuditCheck, **access(Perm.AUDIT_READ))
def verify_audit(hub: HubDep) -> AuditCheck:
    result = hub.audit_verify()
    return AuditCheck(ok=result.ok, entries=result.entries, problems=result.problems)
