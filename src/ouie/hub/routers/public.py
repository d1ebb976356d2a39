"""The transparency summary anyone may read: where sensors are, what is detected, counts."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from sqlalchemy import func, select

from ouie.core.labels import EventLabel
from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now
from ouie.hub.db import Incident, Sensor
from ouie.hub.routers.deps import API_PREFIX, HubDep, access

router = APIRouter(prefix=API_PREFIX, tags=["public"])

#: what the hub never receives from a sensor (stated on the public page)
NEVER_COLLECTED = ["audio", "speech", "transcripts", "embeddings"]


class PublicSensor(StrictModel):
    site: str
    sensor_id: str
    lat: float
    lon: float


class PublicSummary(StrictModel):
    sensors: list[PublicSensor]
    labels: list[EventLabel]
    never_collected: list[str]
    retention_days: int
    incidents_last_7_days: dict[str, int]


@router.get("/public/summary", response_model=PublicSummary, **access("public"))
def public_summary(hub: HubDep) -> PublicSummary:
    """Transparency data: sensor places, what is detected, counts per class and week."""
    since = utc_now() - timedelta(days=7)
    with hub.sessions() as session:
        rows = session.execute(select(Sensor)).scalars().all()
        counts = session.execute(
            select(Incident.label, func.count())
            .where(Incident.created_at >= since)
            .group_by(Incident.label)
        ).all()
        sensors = [
            PublicSensor(site=s.site, sensor_id=s.sensor_id, lat=s.lat, lon=s.lon) for s in rows
        ]
    return PublicSummary(
        sensors=sensors,
        labels=list(EventLabel),
        never_collected=NEVER_COLLECTED,
        retention_days=hub.settings.retention.days,
        incidents_last_7_days={str(label): int(n) for label, n in counts},
    )
