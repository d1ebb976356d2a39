"""Operations: the ingest dead-letter queue and an immediate retention run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select

from ouie.core.model_base import StrictModel
from ouie.hub.auth import Perm
from ouie.hub.db import DeadLetter
from ouie.hub.routers.deps import API_PREFIX, Caller, HubDep, access
from ouie.hub.schemas import IsoTime

router = APIRouter(prefix=API_PREFIX, tags=["admin"])


class DeadLetterView(StrictModel):
    id: int
    received_at: IsoTime
    source: str
    topic: str
    reason: str
    detail: str

    @classmethod
    def of(cls, row: DeadLetter) -> DeadLetterView:
        return cls(
            id=row.id,
            received_at=row.received_at,
            source=row.source,
            topic=row.topic,
            reason=row.reason,
            detail=row.detail,
        )


class DeadLetters(StrictModel):
    dead_letters: list[DeadLetterView]


class RetentionReport(StrictModel):
    sites: dict[str, dict[str, int]] = Field(description="site → table → rows deleted")


@router.get("/dead-letters", response_model=DeadLetters, **access(Perm.INGEST_READ))
def dead_letters(hub: HubDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> DeadLetters:
    query = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)
    with hub.sessions() as session:
        rows = session.execute(query).scalars()
        return DeadLetters(dead_letters=[DeadLetterView.of(row) for row in rows])


@router.post("/admin/retention", response_model=RetentionReport, **access(Perm.SYSTEM_ADMIN))
def retention_now(hub: HubDep, who: Caller) -> RetentionReport:
    return RetentionReport(sites=hub.retention_once(actor=who.username))
