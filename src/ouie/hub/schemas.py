"""What the hub shows of its records: one pydantic model per shape, built from ORM rows.

The API's response models, the live stream and the operator console all serialise incidents,
transitions, feedback and users through these models, so the three cannot drift apart.
Times are sent as ``datetime.isoformat()`` (``+00:00``), as the API always did, rather than
pydantic's ``Z`` form: clients that compare or parse the strings keep working.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, PlainSerializer, WithJsonSchema

from ouie.core.geometry import distance_m
from ouie.core.model_base import StrictModel
from ouie.hub.auth import Role
from ouie.hub.db import (
    ApiToken,
    AuditEntry,
    Detection,
    Feedback,
    Incident,
    IncidentTransition,
    Sensor,
    Shot,
    User,
    UserChangeRequest,
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


METHOD_DOC = (
    "'tdoa': a point fixed from onset time differences, with its 95 % ellipse; 'area': no "
    "point could be fixed (fewer than 3 sensors, or a failed fit) and lat/lon is the centre "
    "of the approximate area the ellipse covers ('strongest' on incidents from before 0004)"
)


class ShotView(StrictModel):
    """One sound of an incident (a round of a burst), located from its own arrivals."""

    number: int = Field(description="1 for the first round, in time order")
    time: IsoTime = Field(description="estimated emission time")
    first_onset: IsoTime
    last_onset: IsoTime
    label: str = Field(description="what this round's own detections say")
    lat: float
    lon: float
    method: str = Field(description=METHOD_DOC)
    approximate: bool = Field(description="true: an area, not a located point")
    radius_m: float
    ellipse_major_m: float | None
    ellipse_minor_m: float | None
    ellipse_angle_deg: float | None
    residual_rms_m: float | None
    sensor_count: int
    detection_count: int
    onset_sensor_count: int = Field(
        description="of sensor_count, the sensors that gave only the onset they heard, on the "
        "hub's request, without classifying the sound (docs/hub.md, onsets on request)"
    )

    @classmethod
    def of(cls, shot: Shot) -> ShotView:
        return cls.model_validate({name: getattr(shot, name) for name in cls.model_fields})


def _track_m(shots: list[Shot]) -> float | None:
    """Distance walked from round to round over the located rounds (None below two)."""
    located = [shot for shot in shots if not shot.approximate]
    if len(located) < 2:
        return None
    return round(
        sum(distance_m(a.lat, a.lon, b.lat, b.lon) for a, b in itertools.pairwise(located)),
        1,
    )


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
    method: str = Field(description=METHOD_DOC)
    approximate: bool = Field(description="true: lat/lon is the centre of an area, not a fix")
    radius_m: float
    ellipse_major_m: float | None
    ellipse_minor_m: float | None
    ellipse_angle_deg: float | None
    residual_rms_m: float | None
    sensor_count: int
    detection_count: int
    max_score: float
    rounds: int = Field(description="shots (sounds) grouped into the incident")
    located_rounds: int = Field(description="of those, fixed by TDOA")
    best_shot: int | None = Field(
        description="number of the shot whose fix the incident shows: a TDOA fix from ≥ 4 "
        "sensors with the smallest ellipse, else the smallest ellipse or area"
    )
    track_m: float | None = Field(
        description="distance from round to round over the located rounds (the shooter's "
        "movement); null with fewer than two"
    )
    shots: list[ShotView]

    @classmethod
    def of(cls, incident: Incident) -> IncidentSummary:
        """The summary of ``incident``; extended views take its fields with ``dict(summary)``."""
        derived = {"shots", "track_m"}
        fields = [name for name in IncidentSummary.model_fields if name not in derived]
        shots = list(incident.shots)
        return IncidentSummary.model_validate(
            {name: getattr(incident, name) for name in fields}
            | {"shots": [ShotView.of(shot) for shot in shots], "track_m": _track_m(shots)}
        )


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
    fused_as: str = Field(
        description="'tdoa': used to locate its shot; 'outlier': rejected by the shot's fit; "
        "'update': another detection of a sound already counted from that sensor"
    )
    shot_number: int | None = Field(description="the shot of its incident it belongs to")

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


class UserChangeView(StrictModel):
    """A user change waiting for a second admin (``ouie.hub.user_admin``); the new
    password itself is never shown, only that there is one."""

    id: int
    kind: Literal["create", "change"]
    username: str
    role: Role | None
    active: bool | None
    password_change: bool
    requested_by: str
    requested_at: IsoTime
    expires_at: IsoTime
    state: Literal["pending", "confirmed", "cancelled", "expired"]

    @classmethod
    def of(cls, row: UserChangeRequest) -> UserChangeView:
        return cls(
            id=row.id,
            kind="create" if row.kind == "create" else "change",
            username=row.username,
            role=Role(row.role) if row.role is not None else None,
            active=row.active,
            password_change=row.password_hash is not None,
            requested_by=row.requested_by,
            requested_at=row.requested_at,
            expires_at=row.expires_at,
            state=_change_state(row.state),
        )


def _change_state(value: str) -> Literal["pending", "confirmed", "cancelled", "expired"]:
    if value == "confirmed":
        return "confirmed"
    if value == "cancelled":
        return "cancelled"
    if value == "expired":
        return "expired"
    return "pending"


class TokenView(StrictModel):
    """One of a user's API tokens (never the token itself, which is shown once)."""

    id: int
    name: str
    created_at: IsoTime
    expires_at: IsoTime
    last_used_at: IsoTime | None
    revoked_at: IsoTime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenView:
        return cls(
            id=row.id,
            name=row.name,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
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
    signing_key: str | None = Field(
        default=None,
        description="base64 Ed25519 key its messages must be signed with; null: not verified",
    )
    rejections: dict[str, int] = Field(
        default_factory=dict, description="messages refused, per reason (docs/security.md)"
    )

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
            signing_key=sensor.signing_key,
            rejections={r.reason: r.count for r in sensor.rejections},
        )
