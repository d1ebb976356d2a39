"""The incident as the verification actions see it.

The hub stores incidents as rows (``ouie.hub.db.Incident``); the actions only need a few of
their fields, so they take an ``IncidentRef`` built from any object that has them
(``IncidentRef.from_record(row)``), which keeps this package free of the hub's database
layer and lets tests and the bench build incidents directly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import AwareDatetime, Field

# IncidentChange is the outputs' settings vocabulary (``changes:`` of a webhook filter);
# re-exported because every notice carries one.
from ouie.config.outputs import IncidentChange as IncidentChange
from ouie.core.labels import EventLabel
from ouie.core.model_base import StrictModel


class IncidentLike(Protocol):
    """What ``IncidentRef.from_record`` reads (the hub's ``Incident`` row has all of it)."""

    @property
    def id(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...
    @property
    def radius_m(self) -> float: ...
    @property
    def first_onset(self) -> datetime: ...
    @property
    def state(self) -> str: ...


class ShotLike(Protocol):
    """What ``ShotRef.from_record`` reads (the hub's ``Shot`` row has all of it)."""

    @property
    def number(self) -> int: ...
    @property
    def time(self) -> datetime: ...
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...
    @property
    def radius_m(self) -> float: ...
    @property
    def method(self) -> str: ...
    @property
    def sensor_count(self) -> int: ...


#: Shots carried with an incident in notices (webhook, MQTT); a long burst keeps its last.
MAX_SHOTS = 50


class ShotRef(StrictModel):
    """One round of an incident: when, where (95 % radius), whether it is only an area."""

    number: int = Field(ge=1)
    time: AwareDatetime = Field(description="estimated emission time, UTC")
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    radius_m: float = Field(ge=0.0)
    approximate: bool = Field(description="true: an approximate area, not a located point")
    sensor_count: int = Field(ge=0)

    @classmethod
    def from_record(cls, record: ShotLike) -> ShotRef:
        return cls(
            number=int(record.number),
            time=record.time,
            lat=float(record.lat),
            lon=float(record.lon),
            radius_m=float(record.radius_m or 0.0),
            approximate=str(record.method) != "tdoa",
            sensor_count=int(record.sensor_count or 0),
        )


class IncidentRef(StrictModel):
    """A located incident: what happened, where (95 % radius), when."""

    id: str = Field(min_length=1, max_length=64)
    site: str = Field(min_length=1, max_length=64)
    label: EventLabel
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    radius_m: float = Field(default=0.0, ge=0.0, description="95 % uncertainty radius")
    time: AwareDatetime = Field(description="first onset, UTC")
    state: str = "new"
    max_score: float | None = Field(default=None, ge=0.0, le=1.0)
    sensor_count: int = Field(default=0, ge=0)
    approximate: bool = Field(
        default=False,
        description="true: no point could be fixed; lat/lon and radius_m describe the "
        "approximate area the sound came from",
    )
    rounds: int = Field(default=1, ge=0, description="shots (sounds) grouped into the incident")
    shots: list[ShotRef] = Field(
        default_factory=list, description=f"its rounds, each located on its own (last {MAX_SHOTS})"
    )

    @classmethod
    def from_record(cls, record: IncidentLike) -> IncidentRef:
        """From the hub's incident row (or anything with the same attributes).

        With an uncertainty ellipse, the radius is its semi-major axis (the conservative
        circle around it)."""
        radius = float(record.radius_m or 0.0)
        major = getattr(record, "ellipse_major_m", None)
        if major is not None:
            radius = max(radius, float(major))
        score = getattr(record, "max_score", None)
        shots = list(getattr(record, "shots", None) or [])[-MAX_SHOTS:]
        return cls(
            id=str(record.id),
            site=str(record.site),
            label=EventLabel(record.label),
            lat=float(record.lat),
            lon=float(record.lon),
            radius_m=radius,
            time=record.first_onset,
            state=str(record.state),
            max_score=None if score is None else min(1.0, max(0.0, float(score))),
            sensor_count=int(getattr(record, "sensor_count", 0) or 0),
            approximate=str(getattr(record, "method", "tdoa")) != "tdoa",
            rounds=int(getattr(record, "rounds", 1) or 0),
            shots=[ShotRef.from_record(shot) for shot in shots],
        )


class IncidentNotice(StrictModel):
    """An incident change the hub hands to the outbound outputs (webhooks, CAP, MQTT)."""

    change: IncidentChange
    incident: IncidentRef
