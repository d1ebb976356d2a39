"""What both fusion paths (impulsive bursts, sustained sounds) write: incidents placed at a
fix or an area, their shot rows, and the created/updated/closed changes with their audit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ouie.hub import audit
from ouie.hub.db import Incident, IncidentTransition, Shot
from ouie.hub.fixes import Fix
from ouie.hub.registry import SensorInfo, SiteGeometry


@dataclass
class PendingDetection:
    """A validated event about to be inserted; fusion fills ``incident_id``, ``fused_as``
    and ``shot_number``."""

    row: dict[str, Any]
    sensor: SensorInfo
    incident_id: str | None = None
    fused_as: str = "tdoa"
    shot_number: int | None = None

    @property
    def onset(self) -> datetime:
        value: datetime = self.row["onset"]
        return value

    @property
    def strength(self) -> float:
        level = self.row.get("level_db_spl")
        base = float(level) if level is not None else float(self.row["level_dbfs"])
        return base + 1e-3 * float(self.row["peak_score"])


@dataclass(frozen=True)
class OnsetAsk:
    """One onset request fusion wants sent: ask ``sensor_id`` what impulses it heard in
    ``[start, end]`` (epoch s), for a shot of ``incident_id``."""

    site: str
    sensor_id: str
    start: float
    end: float
    incident_id: str
    shot_time: float  # the shot's first arrival (epoch s): which shot of the incident


@dataclass(frozen=True)
class IncidentChange:
    incident_id: str
    kind: str  # "created" | "updated" | "closed" (merged into another incident)
    site: str
    label: str
    state: str
    method: str
    sensor_count: int


@dataclass
class FusionOutput:
    """What one ``Fuser.fuse`` call adds: changes to announce, rows to insert, audit."""

    changes: list[IncidentChange] = field(default_factory=list)
    created: list[Incident] = field(default_factory=list)
    transitions: list[IncidentTransition] = field(default_factory=list)
    audit_events: list[audit.AuditEvent] = field(default_factory=list)
    #: stored detections that moved to another incident or shot: ``{id, incident_id,
    #: shot_number, fused_as}``, applied once the new incidents are flushed
    detection_updates: list[dict[str, object]] = field(default_factory=list)
    #: reported onsets that joined or left a shot: ``{id, incident_id, shot_number}``
    onset_updates: list[dict[str, object]] = field(default_factory=list)
    #: onset requests to send once this transaction committed
    onset_asks: list[OnsetAsk] = field(default_factory=list)

    def change(self, incident: Incident, kind: str) -> None:
        self.changes.append(
            IncidentChange(
                incident_id=incident.id,
                kind=kind,
                site=incident.site,
                label=incident.label,
                state=incident.state,
                method=incident.method,
                sensor_count=incident.sensor_count,
            )
        )

    def created_incident(self, incident: Incident, now: datetime) -> None:
        self.created.append(incident)
        self.transitions.append(
            IncidentTransition(
                incident_id=incident.id,
                from_state=None,
                to_state="new",
                actor="system",
                at=now,
                comment="",
            )
        )
        self.audit_events.append(
            audit.AuditEvent(
                actor="system",
                action="incident.created",
                object_type="incident",
                object_id=incident.id,
                detail={"site": incident.site, "label": incident.label},
            )
        )


def new_incident(
    site: str, label: str, onset: datetime, now: datetime, radius_m: float
) -> Incident:
    """An incident row to be placed by the caller (position zero until then)."""
    return Incident(
        id=uuid.uuid4().hex,
        site=site,
        label=label,
        state="new",
        created_at=now,
        updated_at=now,
        first_onset=onset,
        last_onset=onset,
        lat=0.0,
        lon=0.0,
        method="area",
        radius_m=radius_m,
        sensor_count=0,
        detection_count=0,
        max_score=0.0,
        rounds=0,
        located_rounds=0,
        shots=[],
    )


def place(target: Incident | Shot, fix: Fix, geometry: SiteGeometry) -> None:
    """Copy ``fix`` (ENU) onto an incident or shot row (WGS-84)."""
    lat, lon, _ = geometry.frame.to_geodetic(fix.east, fix.north, geometry.source_up)
    target.lat, target.lon = lat, lon
    target.method = fix.method
    target.radius_m = fix.radius_m
    target.ellipse_major_m = fix.ellipse_major_m
    target.ellipse_minor_m = fix.ellipse_minor_m
    target.ellipse_angle_deg = fix.ellipse_angle_deg
    target.residual_rms_m = fix.residual_rms_m


def epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@dataclass(frozen=True)
class ShotFacts:
    """One shot as fusion computed it, ready to be stored."""

    number: int
    time: float  # epoch s
    first_onset: float
    last_onset: float
    label: str
    fix: Fix
    sensor_count: int
    detection_count: int
    onset_sensor_count: int = 0


def store_shots(incident: Incident, shots: list[ShotFacts], geometry: SiteGeometry) -> None:
    """Make ``incident.shots`` hold exactly ``shots``, updating rows in place by number (a
    delete and an insert of the same number in one flush would trip the unique key)."""
    existing = {row.number: row for row in incident.shots}
    rows: list[Shot] = []
    for facts in shots:
        row = existing.get(facts.number) or Shot(number=facts.number)
        row.time = epoch(facts.time)
        row.first_onset = epoch(facts.first_onset)
        row.last_onset = epoch(facts.last_onset)
        row.label = facts.label
        row.sensor_count = facts.sensor_count
        row.detection_count = facts.detection_count
        row.onset_sensor_count = facts.onset_sensor_count
        place(row, facts.fix, geometry)
        rows.append(row)
    incident.shots = rows
