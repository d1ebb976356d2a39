"""Retention: delete detections, reported impulse onsets and incidents older than the
configured days, per site.

What was deleted is logged in the audit chain as counts per site, never as content.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import CursorResult, delete, select, union
from sqlalchemy.orm import Session

from ouie.config.hub import RetentionSettings
from ouie.hub import audit
from ouie.hub.db import DeadLetter, Detection, ImpulseOnsetRow, Incident, Sensor, UserSession


def _deleted(result: object) -> int:
    return int(result.rowcount or 0) if isinstance(result, CursorResult) else 0


def run_retention(
    session: Session, settings: RetentionSettings, now: datetime, actor: str = "system"
) -> dict[str, dict[str, int]]:
    """Delete expired rows in the caller's transaction; returns counts per site."""
    sites = set(
        session.execute(
            union(select(Sensor.site), select(Incident.site), select(Detection.site))
        ).scalars()
    )
    report: dict[str, dict[str, int]] = {}
    for site in sorted(sites):
        days = settings.days_for(site)
        cutoff = now - timedelta(days=days)
        detections = _deleted(
            session.execute(
                delete(Detection).where(Detection.site == site, Detection.onset < cutoff)
            )
        )
        onsets = _deleted(
            session.execute(
                delete(ImpulseOnsetRow).where(
                    ImpulseOnsetRow.site == site, ImpulseOnsetRow.onset < cutoff
                )
            )
        )
        incidents = _deleted(
            session.execute(
                delete(Incident).where(Incident.site == site, Incident.last_onset < cutoff)
            )
        )
        report[site] = {
            "days": days,
            "detections": int(detections or 0),
            "impulses": int(onsets or 0),
            "incidents": int(incidents or 0),
        }
    cutoff = now - timedelta(days=settings.days)
    dead = _deleted(session.execute(delete(DeadLetter).where(DeadLetter.received_at < cutoff)))
    session.execute(delete(UserSession).where(UserSession.expires_at < now))
    audit.record(
        session,
        audit.AuditEvent(
            actor=actor,
            action="retention.run",
            object_type="retention",
            object_id=now.date().isoformat(),
            detail={"sites": report, "dead_letters": int(dead or 0)},
        ),
        at=now,
    )
    return report
