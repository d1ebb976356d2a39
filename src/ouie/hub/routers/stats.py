"""Statistics for supervisors: precision from operator feedback, counts, response times."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import func, select

from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now
from ouie.hub import incidents
from ouie.hub.auth import Perm
from ouie.hub.db import Incident
from ouie.hub.routers.deps import API_PREFIX, HubDep, QueryTime, access, as_utc

router = APIRouter(prefix=API_PREFIX, tags=["stats"])


class VerdictCounts(StrictModel):
    true_alarm: int
    false_alarm: int
    unsure: int
    precision: float | None = Field(description="true / (true + false); null when none decided")


class PrecisionStats(StrictModel):
    overall: VerdictCounts
    per_label: dict[str, VerdictCounts]
    per_sensor: dict[str, VerdictCounts] = Field(description="keyed 'site/sensor_id'")


class DailyCount(StrictModel):
    day: str = Field(description="UTC date, YYYY-MM-DD")
    label: str
    count: int


class ResponseTimes(StrictModel):
    to_acknowledged_median_s: float | None
    to_closed_median_s: float | None


class IncidentStats(StrictModel):
    daily: list[DailyCount]
    by_state: dict[str, int]
    response_times: ResponseTimes


@router.get("/stats/precision", response_model=PrecisionStats, **access(Perm.STATS_READ))
def stats_precision(hub: HubDep, since: QueryTime | None = None) -> PrecisionStats:
    with hub.sessions() as session:
        stats = incidents.precision_stats(session, as_utc(since) if since else None)
    return PrecisionStats.model_validate(stats)


@router.get("/stats/incidents", response_model=IncidentStats, **access(Perm.STATS_READ))
def stats_incidents(hub: HubDep, days: Annotated[int, Query(ge=1, le=3650)] = 30) -> IncidentStats:
    now = utc_now()
    since = now - timedelta(days=days)
    with hub.sessions() as session:
        by_state = session.execute(
            select(Incident.state, func.count())
            .where(Incident.created_at >= since)
            .group_by(Incident.state)
        ).all()
        daily = incidents.daily_counts(session, since, now + timedelta(seconds=1))
        times = incidents.response_times(session, since)
    return IncidentStats(
        daily=[DailyCount.model_validate(row) for row in daily],
        by_state={state: int(n) for state, n in by_state},
        response_times=ResponseTimes.model_validate(times),
    )
