"""HTTP ingest: a sensor posts its messages with its own bearer token (no MQTT needed)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ouie.core.model_base import StrictModel
from ouie.hub.ingest import Envelope
from ouie.hub.routers.deps import API_PREFIX, HubDep, SensorCaller, access

router = APIRouter(prefix=API_PREFIX, tags=["ingest"])

#: how long the request waits for the ingest worker to commit (or reject) the message
OUTCOME_WAIT_S = 30.0


class IngestOutcome(StrictModel):
    outcome: str = Field(description="accepted (202), duplicate (200) or pending (503)")


class IngestRejected(StrictModel):
    outcome: Literal["rejected"]
    reason: str


class RequestInvalid(BaseModel):
    """FastAPI's own answer to a body that is not a JSON object (its shape, not ours)."""

    detail: list[dict[str, Any]]


@router.post(
    "/ingest",
    status_code=202,
    response_model=IngestOutcome,
    responses={
        200: {"model": IngestOutcome, "description": "already received (a duplicate)"},
        422: {"model": IngestRejected | RequestInvalid, "description": "rejected"},
        503: {"model": IngestOutcome, "description": "not committed in time"},
    },
    **access("sensor"),
)
async def ingest(
    payload: Annotated[dict[str, Any], Body()], hub: HubDep, sensor: SensorCaller
) -> JSONResponse:
    """An ``EventMessage`` or ``StatusMessage`` from the sensor the bearer token names."""
    kind = "events" if payload.get("kind") == "event" else "status"
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    await hub.submit(
        Envelope(
            source="http",
            topic=f"ouie/v1/{sensor.site}/{sensor.sensor_id}/{kind}",
            payload=json.dumps(payload).encode("utf-8"),
            outcome=future,
            authenticated_sensor=(sensor.site, sensor.sensor_id),
        )
    )
    try:
        outcome = await asyncio.wait_for(future, OUTCOME_WAIT_S)
    except TimeoutError:
        return _answer(IngestOutcome(outcome="pending"), 503)
    if outcome.startswith("rejected:"):
        reason = outcome.split(":", 1)[1]
        return _answer(IngestRejected(outcome="rejected", reason=reason), 422)
    return _answer(IngestOutcome(outcome=outcome), 202 if outcome == "accepted" else 200)


def _answer(body: StrictModel, status: int) -> JSONResponse:
    # the status depends on the outcome, so the route answers with its own response
    return JSONResponse(body.model_dump(mode="json"), status_code=status)
