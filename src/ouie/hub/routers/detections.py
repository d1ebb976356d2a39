"""Detections as the sensors reported them (audited reads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from ouie.core.labels import EventLabel
from ouie.core.model_base import StrictModel
from ouie.hub.auth import Perm
from ouie.hub.db import Detection
from ouie.hub.routers.deps import API_PREFIX, Caller, HubDep, QueryTime, access, as_utc
from ouie.hub.schemas import DetectionView

router = APIRouter(prefix=API_PREFIX, tags=["detections"])


class DetectionList(StrictModel):
    detections: list[DetectionView]


@router.get("/detections", response_model=DetectionList, **access(Perm.INCIDENTS_READ))
def list_detections(
    hub: HubDep,
    who: Caller,
    incident_id: Annotated[str | None, Query(max_length=64)] = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
    sensor_id: Annotated[str | None, Query(max_length=64)] = None,
    label: EventLabel | None = None,
    since: QueryTime | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> DetectionList:
    query = select(Detection).order_by(Detection.onset.desc()).limit(limit)
    if incident_id:
        query = query.where(Detection.incident_id == incident_id)
    if site:
        query = query.where(Detection.site == site)
    if sensor_id:
        query = query.where(Detection.sensor_id == sensor_id)
    if label:
        query = query.where(Detection.label == label.value)
    if since:
        query = query.where(Detection.onset >= as_utc(since))
    with hub.sessions() as session, session.begin():
        rows = session.execute(query).scalars().all()
        hub.record_read(
            session, who.username, "detection.list", incident_id or "*", count=len(rows)
        )
        return DetectionList(detections=[DetectionView.of(d) for d in rows])
