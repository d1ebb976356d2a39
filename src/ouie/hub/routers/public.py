"""The transparency summary anyone may read: where sensors are, what is detected, counts.

Counts are delayed and small ones suppressed (``ouie.hub.public_counts``), so the summary
cannot tell anyone whether a given sound was just detected.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter
from pydantic import Field
from sqlalchemy import func, select

from ouie.config.web import web_settings
from ouie.core.labels import EventLabel
from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now
from ouie.hub.db import Incident, Sensor
from ouie.hub.public_counts import publishable, published_until
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
    incidents_last_7_days: dict[str, int] = Field(
        description="incidents per class over the 7 whole days ending at counts_until; a "
        "class with fewer than min_count (zero included) is left out, see below_min_count"
    )
    counts_from: datetime
    counts_until: datetime = Field(
        description="end of the counted days: at least counts_delay_h before the request"
    )
    counts_delay_h: float
    min_count: int
    below_min_count: list[EventLabel] = Field(
        description="classes with fewer than min_count incidents in those days (maybe none)"
    )


@router.get("/public/summary", response_model=PublicSummary, **access("public"))
def public_summary(hub: HubDep) -> PublicSummary:
    """Transparency data: sensor places, what is detected, delayed and suppressed counts."""
    settings = web_settings(hub.settings).public_counts
    until = published_until(utc_now(), settings)
    since = until - timedelta(days=7)
    with hub.sessions() as session:
        rows = session.execute(select(Sensor)).scalars().all()
        counts = session.execute(
            select(Incident.label, func.count())
            .where(Incident.first_onset >= since, Incident.first_onset < until)
            .group_by(Incident.label)
        ).all()
        sensors = [
            PublicSensor(site=s.site, sensor_id=s.sensor_id, lat=s.lat, lon=s.lon) for s in rows
        ]
    shown = publishable({str(label): int(n) for label, n in counts}, settings)
    return PublicSummary(
        sensors=sensors,
        labels=list(EventLabel),
        never_collected=NEVER_COLLECTED,
        retention_days=hub.settings.retention.days,
        incidents_last_7_days=shown,
        counts_from=since,
        counts_until=until,
        counts_delay_h=settings.delay_h,
        min_count=settings.min_count,
        below_min_count=[label for label in EventLabel if label.value not in shown],
    )
