"""Incident lifecycle, operator feedback and the statistics built from it.

States: ``new → acknowledged → verifying → confirmed | dismissed → closed``. Operators may
skip ahead where the control room does (confirm or dismiss straight after acknowledging,
dismiss an obvious false alarm while still new); every transition records who, when and
why, and is audited. Feedback (true alarm / false alarm / unsure, and the real cause) drives
per-sensor and per-label precision.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ouie.hub import audit
from ouie.hub.db import Detection, Feedback, Incident, IncidentTransition

STATES = ("new", "acknowledged", "verifying", "confirmed", "dismissed", "closed")
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"acknowledged", "dismissed"}),
    "acknowledged": frozenset({"verifying", "confirmed", "dismissed"}),
    "verifying": frozenset({"confirmed", "dismissed"}),
    "confirmed": frozenset({"closed"}),
    "dismissed": frozenset({"closed"}),
    "closed": frozenset(),
}
Verdict = Literal["true_alarm", "false_alarm", "unsure"]
VERDICTS: tuple[str, ...] = ("true_alarm", "false_alarm", "unsure")


class NotFound(LookupError):
    pass


class TransitionError(ValueError):
    pass


def get(session: Session, incident_id: str) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    return incident


def transition(
    session: Session, incident_id: str, to_state: str, actor: str, comment: str, now: datetime
) -> Incident:
    incident = session.execute(
        select(Incident).where(Incident.id == incident_id).with_for_update()
    ).scalar_one_or_none()
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    if to_state not in TRANSITIONS.get(incident.state, frozenset()):
        raise TransitionError(f"cannot go from {incident.state} to {to_state}")
    previous = incident.state
    incident.state = to_state
    incident.updated_at = now
    session.add(
        IncidentTransition(
            incident_id=incident.id,
            from_state=previous,
            to_state=to_state,
            actor=actor,
            at=now,
            comment=comment,
        )
    )
    audit.record(
        session,
        audit.AuditEvent(
            actor=actor,
            action="incident.transition",
            object_type="incident",
            object_id=incident.id,
            detail={"from": previous, "to": to_state, "comment": comment},
        ),
        at=now,
    )
    return incident


def add_feedback(
    session: Session,
    incident_id: str,
    actor: str,
    verdict: str,
    cause: str,
    comment: str,
    now: datetime,
) -> Feedback:
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}")
    get(session, incident_id)
    feedback = Feedback(
        incident_id=incident_id,
        actor=actor,
        verdict=verdict,
        cause=cause,
        comment=comment,
        created_at=now,
    )
    session.add(feedback)
    audit.record(
        session,
        audit.AuditEvent(
            actor=actor,
            action="incident.feedback",
            object_type="incident",
            object_id=incident_id,
            detail={"verdict": verdict, "cause": cause},
        ),
        at=now,
    )
    return feedback


def _ratio(counts: dict[str, int]) -> dict[str, Any]:
    decided = counts["true_alarm"] + counts["false_alarm"]
    return {
        **counts,
        "precision": counts["true_alarm"] / decided if decided else None,
    }


def precision_stats(session: Session, since: datetime | None = None) -> dict[str, Any]:
    """Precision (true / (true + false alarms)) per label and per sensor, from each
    incident's latest feedback. ``unsure`` is counted but not in the ratio."""
    latest = (
        select(Feedback.incident_id, func.max(Feedback.id).label("fid"))
        .group_by(Feedback.incident_id)
        .subquery()
    )
    query = (
        select(Incident.id, Incident.label, Feedback.verdict)
        .join(latest, latest.c.incident_id == Incident.id)
        .join(Feedback, Feedback.id == latest.c.fid)
    )
    if since is not None:
        query = query.where(Incident.created_at >= since)
    verdicts = {row[0]: (row[1], row[2]) for row in session.execute(query).all()}

    def zero() -> dict[str, int]:
        return {v: 0 for v in VERDICTS}

    per_label: dict[str, dict[str, int]] = defaultdict(zero)
    per_sensor: dict[str, dict[str, int]] = defaultdict(zero)
    for label, verdict in verdicts.values():
        per_label[label][verdict] += 1
    if verdicts:
        rows = session.execute(
            select(Detection.incident_id, Detection.site, Detection.sensor_id)
            .where(Detection.incident_id.in_(list(verdicts)))
            .distinct()
        ).all()
        for incident_id, site, sensor_id in rows:
            if incident_id is None:
                continue
            per_sensor[f"{site}/{sensor_id}"][verdicts[incident_id][1]] += 1
    overall = zero()
    for _, verdict in verdicts.values():
        overall[verdict] += 1
    return {
        "overall": _ratio(overall),
        "per_label": {k: _ratio(v) for k, v in sorted(per_label.items())},
        "per_sensor": {k: _ratio(v) for k, v in sorted(per_sensor.items())},
    }


def daily_counts(session: Session, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Incidents per UTC day and label between ``since`` and ``until``."""
    rows = session.execute(
        select(Incident.created_at, Incident.label, Incident.state).where(
            Incident.created_at >= since, Incident.created_at < until
        )
    ).all()
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for created, label, _ in rows:
        counts[(created.date().isoformat(), label)] += 1
    return [{"day": day, "label": label, "count": n} for (day, label), n in sorted(counts.items())]


def response_times(session: Session, since: datetime) -> dict[str, float | None]:
    """Median seconds from creation to acknowledgement and to closing."""
    rows = session.execute(
        select(Incident.created_at, IncidentTransition.to_state, IncidentTransition.at)
        .join(IncidentTransition, IncidentTransition.incident_id == Incident.id)
        .where(
            Incident.created_at >= since,
            IncidentTransition.to_state.in_(("acknowledged", "closed")),
        )
    ).all()
    acks = sorted(
        (at - created).total_seconds() for created, state, at in rows if state == "acknowledged"
    )
    closes = sorted(
        (at - created).total_seconds() for created, state, at in rows if state == "closed"
    )

    def median(values: list[float]) -> float | None:
        if not values:
            return None
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])

    return {"to_acknowledged_median_s": median(acks), "to_closed_median_s": median(closes)}
