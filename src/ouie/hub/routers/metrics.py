"""Prometheus metrics (``/metrics``, text exposition format)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from ouie.hub.auth import Perm
from ouie.hub.routers.deps import HubDep, access

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    **access(Perm.METRICS_READ),
)
def metrics(hub: HubDep) -> Response:
    return Response(hub.metrics.render(), media_type="text/plain; version=0.0.4")
