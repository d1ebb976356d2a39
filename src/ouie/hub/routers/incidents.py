"""Incidents: list, read (audited), state transitions, operator feedback, the live stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field
from sqlalchemy import select

from ouie.core.labels import EventLabel
from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now
from ouie.hub import incidents
from ouie.hub.auth import Perm
from ouie.hub.db import AuditEntry, Incident
from ouie.hub.routers.deps import API_PREFIX, Caller, HubDep, QueryTime, access, as_utc
from ouie.hub.schemas import (
    AuditMention,
    DetectionView,
    FeedbackView,
    IncidentSummary,
    TransitionView,
)

router = APIRouter(prefix=API_PREFIX, tags=["incidents"])

#: audit entries shown with one incident (the full trail is ``GET /audit?object_id=``)
AUDIT_SHOWN = 500


class TransitionBody(StrictModel):
    to: Literal["acknowledged", "verifying", "confirmed", "dismissed", "closed"]
    comment: str = Field(default="", max_length=2000)


class FeedbackBody(StrictModel):
    verdict: Literal["true_alarm", "false_alarm", "unsure"]
    cause: str = Field(default="", max_length=200)
    comment: str = Field(default="", max_length=2000)


class IncidentList(StrictModel):
    incidents: list[IncidentSummary]


class IncidentDetail(IncidentSummary):
    detections: list[DetectionView]
    transitions: list[TransitionView]
    feedback: list[FeedbackView]
    audit: list[AuditMention]


class FeedbackRecorded(StrictModel):
    incident_id: str
    verdict: Literal["true_alarm", "false_alarm", "unsure"]


@router.get("/incidents", response_model=IncidentList, **access(Perm.INCIDENTS_READ))
def list_incidents(
    hub: HubDep,
    who: Caller,
    state: Annotated[str | None, Query(max_length=16)] = None,
    label: EventLabel | None = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
    since: QueryTime | None = None,
    until: QueryTime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> IncidentList:
    query = select(Incident).order_by(Incident.created_at.desc()).limit(limit)
    if state:
        query = query.where(Incident.state == state)
    if label:
        query = query.where(Incident.label == label.value)
    if site:
        query = query.where(Incident.site == site)
    if since:
        query = query.where(Incident.created_at >= as_utc(since))
    if until:
        query = query.where(Incident.created_at < as_utc(until))
    with hub.sessions() as session, session.begin():
        rows = session.execute(query).scalars().all()
        hub.record_read(session, who.username, "incident.list", "*", count=len(rows))
        return IncidentList(incidents=[IncidentSummary.of(row) for row in rows])


@router.get(
    "/incidents/{incident_id}", response_model=IncidentDetail, **access(Perm.INCIDENTS_READ)
)
def get_incident(incident_id: str, hub: HubDep, who: Caller) -> IncidentDetail:
    with hub.sessions() as session, session.begin():
        incident = session.get(Incident, incident_id[:64])
        if incident is None:
            raise HTTPException(404, "no such incident")
        hub.record_read(session, who.username, "incident.read", incident.id)
        trail = session.execute(
            select(AuditEntry)
            .where(AuditEntry.object_type == "incident", AuditEntry.object_id == incident.id)
            .order_by(AuditEntry.seq)
            .limit(AUDIT_SHOWN)
        ).scalars()
        return IncidentDetail(
            **dict(IncidentSummary.of(incident)),
            detections=[DetectionView.of(d) for d in incident.detections],
            transitions=[TransitionView.of(t) for t in incident.transitions],
            feedback=[FeedbackView.of(f) for f in incident.feedback],
            audit=[AuditMention.of(a) for a in trail],
        )


@router.post(
    "/incidents/{incident_id}/transitions",
    response_model=IncidentSummary,
    **access(Perm.INCIDENTS_ACT),
)
def transition(incident_id: str, body: TransitionBody, hub: HubDep, who: Caller) -> IncidentSummary:
    try:
        with hub.sessions() as session, session.begin():
            incident = incidents.transition(
                session, incident_id[:64], body.to, who.username, body.comment, utc_now()
            )
            summary = IncidentSummary.of(incident)
    except incidents.NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except incidents.TransitionError as exc:
        raise HTTPException(409, str(exc)) from exc
    hub.publish_incident(summary, "updated")
    hub.notify_changes([(summary.id, "closed" if body.to == "closed" else "state_changed")])
    return summary


@router.post(
    "/incidents/{incident_id}/feedback",
    status_code=201,
    response_model=FeedbackRecorded,
    **access(Perm.FEEDBACK_WRITE),
)
def feedback(incident_id: str, body: FeedbackBody, hub: HubDep, who: Caller) -> FeedbackRecorded:
    try:
        with hub.sessions() as session, session.begin():
            incidents.add_feedback(
                session,
                incident_id[:64],
                who.username,
                body.verdict,
                body.cause,
                body.comment,
                utc_now(),
            )
    except incidents.NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return FeedbackRecorded(incident_id=incident_id, verdict=body.verdict)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    response_model=None,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    **access(Perm.INCIDENTS_READ),
)
async def stream(request: Request, hub: HubDep, who: Caller) -> StreamingResponse:
    """Server-Sent Events: ``incident.created`` / ``incident.updated``, JSON data
    (an ``IncidentSummary``)."""

    def record() -> None:
        with hub.sessions() as session, session.begin():
            hub.record_read(session, who.username, "incident.stream", "*")

    await asyncio.to_thread(record)
    queue = hub.live.subscribe()

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n: connected\n\n"
            while True:
                if await request.is_disconnected():
                    return
                try:
                    message = await asyncio.wait_for(queue.get(), 15.0)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                data = json.dumps(message["incident"], separators=(",", ":"))
                yield f"event: {message['type']}\ndata: {data}\n\n".encode()
        finally:
            hub.live.unsubscribe(queue)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )
