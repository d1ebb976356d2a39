"""Read models of the console: what each page shows, queried from the hub's database.

Writes never happen here: state changes, feedback, thresholds and users go through the
hub's services (``ouie.hub.incidents``, ``ouie.hub.auth``), which audit them. Incidents,
their transitions and feedback are the hub's own models (``ouie.hub.schemas``), extended
with what only the console shows (zone, detection timeline, allowed next states), so the
console and the API serialise an incident the same way.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from ouie.core.labels import EVENT_LABELS
from ouie.core.model_base import StrictModel
from ouie.hub import incidents as incident_service
from ouie.hub.db import AuditEntry, Detection, Feedback, Incident, IncidentTransition, Sensor
from ouie.hub.schemas import FeedbackView, IncidentSummary, IsoTime, TransitionView
from ouie.hub.sensors import all_sensors
from ouie.node.tuned import tuned_for
from ouie.web.geo import SitePlan

OPEN_STATES = ("new", "acknowledged", "verifying", "confirmed")
LABELS = [label.value for label in EVENT_LABELS]


def effective_health(sensor: Sensor, now: datetime, stale_after_s: float) -> str:
    # same rule as the API (ouie.hub.sensors.describe): never seen or silent → offline
    if sensor.last_seen_at is None or (now - sensor.last_seen_at).total_seconds() > stale_after_s:
        return "offline"
    return sensor.health or "unknown"


def calibrated_defaults(model_id: object) -> tuple[dict[str, float], str | None]:
    """The default thresholds a node runs when none is configured: those shipped for its
    model family (``ouie.node.tuned``), with the rule they were derived by (e.g. at most N
    false alarms per day on out-of-source street audio), shown on the thresholds page."""
    tuned = tuned_for(model_id) if isinstance(model_id, str) and model_id else None
    if tuned is None:
        return {}, None
    return {label.value: value for label, value in tuned.thresholds.items()}, tuned.objective


def sensor_dict(sensor: Sensor, now: datetime, stale_after_s: float) -> dict[str, Any]:
    status = sensor.last_status or {}
    level = status.get("level") or {}
    defaults, defaults_basis = calibrated_defaults(status.get("model_id"))
    return {
        "pk": sensor.id,
        "site": sensor.site,
        "id": sensor.sensor_id,
        "name": sensor.name,
        "lat": sensor.lat,
        "lon": sensor.lon,
        "height_m": sensor.height_m,
        "mounting": sensor.mounting,
        "health": effective_health(sensor, now, stale_after_s),
        "last_seen": sensor.last_seen_at.isoformat() if sensor.last_seen_at else None,
        "thresholds": dict(sensor.thresholds or {}),
        "level_mean_dbfs": level.get("mean_dbfs"),
        "level_max_dbfs": level.get("max_dbfs"),
        "speech_suppressions": status.get("speech_suppressions"),
        "events_emitted": status.get("events_emitted"),
        "uptime_s": status.get("uptime_s"),
        "cpu_percent": status.get("cpu_percent"),
        "clock_source": status.get("clock_source"),
        "clock_offset_ms": status.get("clock_offset_ms"),
        "model_id": status.get("model_id"),
        "default_thresholds": defaults,
        "defaults_basis": defaults_basis,
        # issue 18: whether its messages are verified, and what the hub refused from it
        "signing_key": sensor.signing_key,
        "cert_fingerprint": sensor.cert_fingerprint,
        "rejected_configs": status.get("rejected_configs"),
        "rejections": [
            {"reason": r.reason, "count": r.count, "last_at": r.last_at.isoformat()}
            for r in sensor.rejections
        ],
        "rejected_total": sum(r.count for r in sensor.rejections),
    }


def sensors(session: Session, now: datetime, stale_after_s: float) -> list[dict[str, Any]]:
    return [sensor_dict(row, now, stale_after_s) for row in all_sensors(session)]


def sites(session: Session) -> list[str]:
    """The sites that have sensors (offered as zones where the plan has none)."""
    return sorted({row.site for row in all_sensors(session)})


class ConsoleIncident(IncidentSummary):
    """The hub's incident summary plus the plan's zone it lies in."""

    zone: str

    @classmethod
    def of_row(cls, incident: Incident, plan: SitePlan) -> ConsoleIncident:
        zone = plan.zone_of(incident.lat, incident.lon, incident.site)
        return cls(**dict(IncidentSummary.of(incident)), zone=zone)


class TimelineDetection(StrictModel):
    onset: IsoTime
    offset_ms: float = Field(description="after the incident's first detection")
    duration_s: float
    score: float
    level_dbfs: float
    level_db_spl: float | None
    fused_as: str
    speech_present: bool


class TimelineRow(StrictModel):
    sensor_id: str
    detections: list[TimelineDetection]
    position: tuple[float, float] | None


class AuditRow(StrictModel):
    """An audit entry for people: detail as short text, the hash shortened."""

    seq: int
    at: IsoTime
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: str
    hash: str


class ConsoleIncidentDetail(ConsoleIncident):
    timeline: list[TimelineRow]
    timeline_span_ms: float
    round_offsets_s: list[float] = Field(description="each shot's time after the first's")
    transitions: list[TransitionView]
    feedback: list[FeedbackView]
    audit: list[AuditRow]
    allowed: list[str] = Field(description="the states an operator may move it to")


@dataclass(frozen=True)
class IncidentFilter:
    label: str = ""
    state: str = ""  # "", "open" or a state
    since: date | None = None
    until: date | None = None
    zone: str = ""
    limit: int = 100

    def as_params(self) -> dict[str, str]:
        return {
            "label": self.label,
            "state": self.state,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "zone": self.zone,
        }


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def incident_list(session: Session, flt: IncidentFilter, plan: SitePlan) -> list[ConsoleIncident]:
    query = select(Incident)
    if flt.label:
        query = query.where(Incident.label == flt.label)
    if flt.state == "open":
        query = query.where(Incident.state.in_(OPEN_STATES))
    elif flt.state:
        query = query.where(Incident.state == flt.state)
    if flt.since:
        query = query.where(Incident.first_onset >= _day_start(flt.since))
    if flt.until:
        query = query.where(Incident.first_onset < _day_start(flt.until) + timedelta(days=1))
    query = query.order_by(Incident.first_onset.desc())
    out: list[ConsoleIncident] = []
    # zones are geometric: filter after the query, reading in pages
    offset, page = 0, max(flt.limit, 100)
    while len(out) < flt.limit:
        rows = session.execute(query.offset(offset).limit(page)).scalars().all()
        for row in rows:
            item = ConsoleIncident.of_row(row, plan)
            if not flt.zone or item.zone == flt.zone:
                out.append(item)
                if len(out) >= flt.limit:
                    break
        if len(rows) < page or not flt.zone:
            break
        offset += page
    return out


def open_incidents(session: Session, plan: SitePlan, limit: int = 200) -> list[ConsoleIncident]:
    rows = session.execute(
        select(Incident)
        .where(Incident.state.in_(OPEN_STATES))
        .order_by(Incident.first_onset.desc())
        .limit(limit)
    ).scalars()
    return [ConsoleIncident.of_row(row, plan) for row in rows]


def incident_detail(
    session: Session, incident_id: str, plan: SitePlan
) -> ConsoleIncidentDetail | None:
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    detections = (
        session.execute(
            select(Detection).where(Detection.incident_id == incident_id).order_by(Detection.onset)
        )
        .scalars()
        .all()
    )
    per_sensor: dict[str, list[TimelineDetection]] = defaultdict(list)
    first = detections[0].onset if detections else incident.first_onset
    for d in detections:
        per_sensor[d.sensor_id].append(
            TimelineDetection(
                onset=d.onset,
                offset_ms=(d.onset - first).total_seconds() * 1000.0,
                duration_s=(d.offset - d.onset).total_seconds(),
                score=d.peak_score,
                level_dbfs=d.level_dbfs,
                level_db_spl=d.level_db_spl,
                fused_as=d.fused_as,
                speech_present=d.speech_present,
            )
        )
    span_ms = (
        max(
            (d.onset - first).total_seconds() * 1000.0 + (d.offset - d.onset).total_seconds() * 1000
            for d in detections
        )
        if detections
        else 0.0
    )
    sensor_positions = {
        s.sensor_id: (s.lat, s.lon)
        for s in session.execute(
            select(Sensor).where(
                Sensor.site == incident.site, Sensor.sensor_id.in_(list(per_sensor))
            )
        ).scalars()
    }
    first_shot = incident.shots[0].time if incident.shots else incident.first_onset
    return ConsoleIncidentDetail(
        **dict(ConsoleIncident.of_row(incident, plan)),
        round_offsets_s=[(s.time - first_shot).total_seconds() for s in incident.shots],
        timeline=[
            TimelineRow(sensor_id=sid, detections=rows, position=sensor_positions.get(sid))
            for sid, rows in sorted(per_sensor.items(), key=lambda kv: kv[1][0].offset_ms)
        ],
        timeline_span_ms=max(span_ms, 1.0),
        transitions=[
            TransitionView.of(t)
            for t in session.execute(
                select(IncidentTransition)
                .where(IncidentTransition.incident_id == incident_id)
                .order_by(IncidentTransition.id)
            ).scalars()
        ],
        feedback=[
            FeedbackView.of(f)
            for f in session.execute(
                select(Feedback).where(Feedback.incident_id == incident_id).order_by(Feedback.id)
            ).scalars()
        ],
        audit=audit_for(session, "incident", incident_id),
        allowed=sorted(incident_service.TRANSITIONS.get(incident.state, frozenset())),
    )


def audit_for(session: Session, object_type: str, object_id: str) -> list[AuditRow]:
    rows = session.execute(
        select(AuditEntry)
        .where(AuditEntry.object_type == object_type, AuditEntry.object_id == object_id)
        .order_by(AuditEntry.seq)
    ).scalars()
    return [audit_row(row) for row in rows]


def _detail_text(raw: str) -> str:
    """An audit entry's detail as short ``key: value`` text for people."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(value, dict):
        return str(value)
    parts = []
    for key, item in value.items():
        if item in ("", None, {}, []):
            continue
        text = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        parts.append(f"{key}: {text}")
    return " · ".join(parts)


def audit_row(row: AuditEntry) -> AuditRow:
    return AuditRow(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        detail=_detail_text(row.detail),
        hash=row.hash[:12],
    )


def recent_audit(session: Session, limit: int = 200, action: str = "") -> list[AuditRow]:
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action.like(f"{action}%"))
    rows = session.execute(query.order_by(AuditEntry.seq.desc()).limit(limit)).scalars()
    return [audit_row(row) for row in rows]


def sensor_detail(
    session: Session,
    site: str,
    sensor_id: str,
    now: datetime,
    stale_after_s: float,
    hours: float = 24.0,
) -> dict[str, Any] | None:
    sensor = session.execute(
        select(Sensor).where(Sensor.site == site, Sensor.sensor_id == sensor_id)
    ).scalar_one_or_none()
    if sensor is None:
        return None
    data = sensor_dict(sensor, now, stale_after_s)
    data["scores"] = sensor_scores(session, sensor.id, now, hours)
    recent = session.execute(
        select(Detection)
        .where(Detection.sensor_pk == sensor.id)
        .order_by(Detection.onset.desc())
        .limit(20)
    ).scalars()
    data["recent"] = [
        {
            "onset": d.onset.isoformat(),
            "label": d.label,
            "score": d.peak_score,
            "level_dbfs": d.level_dbfs,
            "incident_id": d.incident_id,
        }
        for d in recent
    ]
    return data


def sensor_scores(
    session: Session, sensor_pk: int, now: datetime, hours: float, per_label: int = 60
) -> dict[str, list[tuple[str, float]]]:
    """The last ``per_label`` detection scores per label within ``hours`` (oldest first)."""
    since = now - timedelta(hours=hours)
    rows = session.execute(
        select(Detection.label, Detection.onset, Detection.peak_score)
        .where(Detection.sensor_pk == sensor_pk, Detection.onset >= since)
        .order_by(Detection.onset.desc())
        .limit(per_label * len(LABELS))
    ).all()
    out: dict[str, list[tuple[str, float]]] = {label: [] for label in LABELS}
    for label, onset, score in rows:
        series = out.setdefault(label, [])
        if len(series) < per_label:
            series.append((onset.isoformat(), float(score)))
    return {label: list(reversed(series)) for label, series in out.items()}


# -- statistics ---------------------------------------------------------------------------


def daily_series(
    session: Session, days: int, now: datetime
) -> tuple[list[str], dict[str, list[int]]]:
    until = _day_start(now.date()) + timedelta(days=1)
    since = until - timedelta(days=days)
    rows = incident_service.daily_counts(session, since, until)
    categories = [(since + timedelta(days=i)).date().isoformat() for i in range(days)]
    index = {day: i for i, day in enumerate(categories)}
    series = {label: [0] * days for label in LABELS}
    for row in rows:
        i = index.get(row["day"])
        if i is not None:
            series.setdefault(row["label"], [0] * days)[i] += int(row["count"])
    return categories, series


def response_durations(session: Session, since: datetime) -> dict[str, list[float]]:
    """Seconds from creation to the first acknowledgement, and to closing or dismissal."""
    rows = session.execute(
        select(Incident.id, Incident.created_at, IncidentTransition.to_state, IncidentTransition.at)
        .join(IncidentTransition, IncidentTransition.incident_id == Incident.id)
        .where(
            Incident.created_at >= since,
            IncidentTransition.to_state.in_(("acknowledged", "dismissed", "closed")),
        )
        .order_by(IncidentTransition.id)
    ).all()
    ack: dict[str, float] = {}
    end: dict[str, float] = {}
    for incident_id, created, state, at in rows:
        seconds = max((at - created).total_seconds(), 0.0)
        if state == "acknowledged":
            ack.setdefault(incident_id, seconds)
        else:
            end.setdefault(incident_id, seconds)
    return {"ack": sorted(ack.values()), "end": sorted(end.values())}


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def weekly_counts(
    session: Session, weeks: int, now: datetime, until: datetime | None = None
) -> tuple[list[str], dict[str, list[int]]]:
    """Incidents per ISO week (Monday) and label, for the whole hub — no positions.
    ``until``: count only incidents before it (the public page's publication delay)."""
    today = now.date()
    monday = today - timedelta(days=today.weekday())
    first = monday - timedelta(weeks=weeks - 1)
    query = select(Incident.first_onset, Incident.label).where(
        Incident.first_onset >= _day_start(first)
    )
    if until is not None:
        query = query.where(Incident.first_onset < until)
    rows = session.execute(query).all()
    categories = [(first + timedelta(weeks=i)).isoformat() for i in range(weeks)]
    series = {label: [0] * weeks for label in LABELS}
    for onset, label in rows:
        i = (onset.date() - first).days // 7
        if 0 <= i < weeks:
            series.setdefault(label, [0] * weeks)[i] += 1
    return categories, series


def feedback_counts(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Feedback)).scalar_one())


def last_transition_at(session: Session, incident_id: str, state: str) -> datetime | None:
    value = session.execute(
        select(func.max(IncidentTransition.at)).where(
            and_(
                IncidentTransition.incident_id == incident_id, IncidentTransition.to_state == state
            )
        )
    ).scalar_one_or_none()
    return value
