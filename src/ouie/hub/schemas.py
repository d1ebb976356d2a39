"""What the hub shows of its records: one pydantic model per shape, built from ORM rows.

The API's response models, the live stream and the operator console all serialise incidents,
transitions, feedback and users through these models, so the three cannot drift apart.
Times are sent as ``datetime.isoformat()`` (``+00:00``), as the API always did, rather than
pydantic's ``Z`` form: clients that compare or parse the strings keep working.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, PlainSerializer, WithJsonSchema

from ouie.core.model_base import StrictModel
from ouie.hub.auth import Role
from ouie.hub.db import (
    AuditEntry,
    Detection,
    Feedback,
    Incident,
    IncidentTransition,
    Sensor,
    User,
)


def _iso(value: datetime) -> str:
    return value.isoformat()


#: An aware UTC time, serialised with ``isoformat()`` in JSON (a datetime in Python dumps).
IsoTime = Annotated[
    datetime,
    PlainSerializer(_iso, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]

IncidentState = Literal["new", "acknowledged", "verifying", "confirmed", "dismissed", "closed"]


class IncidentSummary(StrictModel):
    """What lists, the live stream and integrators see of an incident."""

    id: str
    site: str
    label: str
    state: IncidentState
    created_at: IsoTime
    updated_at: IsoTime
    first_onset: IsoTime
    last_onset: IsoTime
    lat: float
    lon: float
    method: str
    radius_m: float
    ellipse_major_m: float | None
    ellipse_minor_m: float | None
    ellipse_angle_deg: float | None
    residual_rms_m: float | None
    sensor_count: int
    detection_count: int
    max_score: float

    @classmethod
    def of(cls, incident: Incident) -> IncidentSummary:
        """The summary of ``incident``; extended views take its fields with ``dict(summary)``."""
        fields = IncidentSummary.model_fields
        return IncidentSummary.model_validate({name: getattr(incident, name) for name in fields})


class DetectionView(StrictModel):
    id: int
    message_id: str
    site: str
    sensor_id: str
    label: str
    onset: IsoTime
    offset: IsoTime
    peak_score: float
    level_dbfs: float
    level_db_spl: float | None
    model_id: str
    speech_present: bool
    sequence: int
    received_at: IsoTime
    incident_id: str | None
    fused_as: str

    @classmethod
    def of(cls, detection: Detection) -> DetectionView:
        return cls.model_validate({name: getattr(detection, name) for name in cls.model_fields})


class TransitionView(StrictModel):
    # "from" is a Python keyword: the field is ``from_`` and JSON says "from"
    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    from_: str | None = Field(alias="from")
    to: str
    actor: str
    at: IsoTime
    comment: str

    @classmethod
    def of(cls, row: IncidentTransition) -> TransitionView:
        return cls(
            from_=row.from_state, to=row.to_state, actor=row.actor, at=row.at, comment=row.comment
        )


class FeedbackView(StrictModel):
    verdict: str
    cause: str
    comment: str
    actor: str
    at: IsoTime

    @classmethod
    def of(cls, row: Feedback) -> FeedbackView:
        return cls(
            verdict=row.verdict,
            cause=row.cause,
            comment=row.comment,
            actor=row.actor,
            at=row.created_at,
        )


class AuditMention(StrictModel):
    """One audit entry about an incident, as the incident's page lists it."""

    seq: int
    at: IsoTime
    actor: str
    action: str

    @classmethod
    def of(cls, row: AuditEntry) -> AuditMention:
        return cls(seq=row.seq, at=row.at, actor=row.actor, action=row.action)


class UserView(StrictModel):
    username: str
    role: Role
    active: bool
    created_at: IsoTime

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(
            username=user.username,
            role=Role(user.role),
            active=user.active,
            created_at=user.created_at,
        )


class SensorView(StrictModel):
    """A registered sensor with its effective health and last status message."""

    site: str
    sensor_id: str
    name: str
    lat: float
    lon: float
    height_m: float
    mounting_height_m: float
    mounting: str
    calibration_db: float | None
    thresholds: dict[str, float]
    last_seen_at: IsoTime | None
    health: str = Field(description="'offline' when silent longer than ingest.stale_after_s")
    status: dict[str, Any] | None = Field(description="the last StatusMessage, as sent")

    @classmethod
    def of(cls, sensor: Sensor, stale_after_s: float, now: datetime) -> SensorView:
        seen = sensor.last_seen_at
        silent = seen is None or (now - seen).total_seconds() > stale_after_s
        return cls(
            site=sensor.site,
            sensor_id=sensor.sensor_id,
            name=sensor.name,
            lat=sensor.lat,
            lon=sensor.lon,
            height_m=sensor.height_m,
            mounting_height_m=sensor.mounting_height_m,
            mounting=sensor.mounting,
            calibration_db=sensor.calibration_db,
            thresholds=sensor.thresholds or {},
            last_seen_at=seen,
            health="offline" if silent else sensor.health,
            status=sensor.last_status,
        )
