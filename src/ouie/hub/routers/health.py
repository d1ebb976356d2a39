"""Liveness: ``/api/v1/health`` (database, ingest queue, MQTT) and the bare ``/health``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from sqlalchemy import select

from ouie.core.model_base import StrictModel
from ouie.hub.routers.deps import API_PREFIX, HubDep, access

router = APIRouter(tags=["health"])


class Health(StrictModel):
    status: Literal["ok"]
    ingest_queue: int
    mqtt: Literal["disabled", "connected", "disconnected"]


class Alive(StrictModel):
    status: Literal["ok"]


@router.get(f"{API_PREFIX}/health", response_model=Health, **access("public"))
def health(hub: HubDep) -> Health:
    with hub.sessions() as session:
        session.execute(select(1))  # the database answers
    mqtt: Literal["disabled", "connected", "disconnected"] = "disabled"
    if hub.mqtt is not None:
        mqtt = "connected" if hub.mqtt.connected.is_set() else "disconnected"
    return Health(status="ok", ingest_queue=hub.worker.queue.qsize(), mqtt=mqtt)


@router.get("/health", response_model=Alive, **access("public"))
def root_health() -> Alive:
    """For load balancers: the process answers (no database round trip)."""
    return Alive(status="ok")
