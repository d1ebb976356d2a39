"""A bounded experiment (``compliance.experiment``) kept bounded at run time.

``ouie check`` refuses a production config whose experiment has ended (``experiment-ended``);
this module holds the same line while the hub runs and across restarts:

- at its first production start the hub writes the experiment's dates to the audit log
  (``experiment.declared``);
- a later start whose configured ``end`` is past the audited one is refused: moving the end
  is an extension, and an extension is only ``ouie experiment extend`` (``extend``): an
  admin's audited action that needs a DPIA regenerated from exactly the configuration with
  the new end (the DPIA's ``compliance_digest``);
- at the end the hub deletes every detection, incident (with its transitions and
  feedback), dead letter and session, writes the counts to the audit log
  (``experiment.ended``) and stops (``purge_all``).

The audit log is the store: its entries are hash-chained, and nothing else needs a table.
It is itself kept after the end, as the controller's record of what was done.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, Field
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from ouie.config.compliance import ComplianceSettings, Experiment
from ouie.core.model_base import StrictModel
from ouie.hub import audit
from ouie.hub.db import (
    AuditEntry,
    DeadLetter,
    Detection,
    Feedback,
    Incident,
    IncidentTransition,
    UserSession,
)
from ouie.hub.incidents import precision_stats

DECLARED = "experiment.declared"
EXTENDED = "experiment.extended"
ENDED = "experiment.ended"


class ExperimentError(RuntimeError):
    """The experiment forbids running (ended, or extended without the audited action)."""


class DpiaAttestation(StrictModel):
    """What a DPIA says about the experiment it assesses (``ouie`` block of dpia-pia.json)."""

    start: date
    end: date
    compliance_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    generated_at: AwareDatetime


class AuditedEnd(StrictModel):
    end: date
    action: str
    at: datetime
    seq: int


class PurgeReport(StrictModel):
    detections: int
    incidents: int
    transitions: int
    feedback: int
    dead_letters: int
    sessions: int


def audited_end(session: Session) -> AuditedEnd | None:
    """The experiment end last declared or extended in the audit log."""
    row = session.execute(
        select(AuditEntry)
        .where(AuditEntry.action.in_((DECLARED, EXTENDED)))
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None:
        return None
    detail = json.loads(row.detail)
    return AuditedEnd(
        end=date.fromisoformat(str(detail["end"])), action=row.action, at=row.at, seq=row.seq
    )


class GateVerdict(StrictModel):
    """The end in force at a start, and why the hub may not run (None: it may)."""

    end: date
    ends_at: datetime
    problem: str | None


def gate(session: Session, compliance: ComplianceSettings, now: datetime) -> GateVerdict | None:
    """At a production start: declare the experiment once (audited), and tell the end in
    force and whether the hub may run. None: no experiment configured.

    A configured end later than the audited one is an unaudited extension: refused, and
    the audited end stays in force (its data are purged when it has passed)."""
    experiment = compliance.experiment
    if experiment is None:
        return None
    audited = audited_end(session)
    end = experiment.end
    problem = None
    if audited is None:
        audit.record(
            session,
            audit.AuditEvent(
                actor="system",
                action=DECLARED,
                object_type="experiment",
                object_id=experiment.start.isoformat(),
                detail={
                    "start": experiment.start.isoformat(),
                    "end": experiment.end.isoformat(),
                    "compliance_digest": compliance.digest(),
                },
            ),
            at=now,
        )
    elif experiment.end > audited.end:
        end = audited.end
        problem = (
            f"compliance.experiment.end is {experiment.end} but the audit log's end is "
            f"{audited.end} (entry {audited.seq}): an extension must be recorded with "
            "`ouie experiment extend` and a DPIA regenerated for the new end"
        )
    ends_at = experiment.ends_at(end)
    if now >= ends_at:
        problem = f"the experiment ended on {end}; its data are purged and the hub does not run"
    return GateVerdict(end=end, ends_at=ends_at, problem=problem)


def extend(
    session: Session,
    compliance: ComplianceSettings,
    dpia: DpiaAttestation,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> AuditedEnd:
    """Record an extension to ``compliance.experiment.end`` (the new configuration).

    Accepted only when the DPIA was generated from exactly this configuration (same
    digest, same end) after the end in force was last set, and the end moves later."""
    experiment = compliance.experiment
    if experiment is None:
        raise ExperimentError("the configuration has no compliance.experiment to extend")
    if not reason.strip():
        raise ExperimentError("give the reason for the extension (the controller's decision)")
    audited = audited_end(session)
    if audited is None:
        raise ExperimentError("no experiment was declared yet: start the hub once first")
    if experiment.end <= audited.end:
        raise ExperimentError(
            f"compliance.experiment.end ({experiment.end}) is not later than the end in force "
            f"({audited.end}); set the new end in the configuration first"
        )
    if dpia.end != experiment.end or dpia.start != experiment.start:
        raise ExperimentError(
            f"the DPIA assesses {dpia.start}..{dpia.end}, not the configured "
            f"{experiment.start}..{experiment.end}: regenerate it (`ouie dpia`)"
        )
    if dpia.compliance_digest != compliance.digest():
        raise ExperimentError(
            "the DPIA was not generated from this configuration (compliance digest differs): "
            "regenerate it with `ouie dpia --config` on the configuration being extended"
        )
    # The DPIA states its time to the second: one generated within the second the end was
    # recorded is not earlier than it (and its digest already ties it to the new config).
    if dpia.generated_at < audited.at.replace(microsecond=0):
        raise ExperimentError(
            f"the DPIA ({dpia.generated_at:%Y-%m-%d %H:%M}) predates the end in force "
            f"({audited.at:%Y-%m-%d %H:%M}): regenerate it"
        )
    audit.record(
        session,
        audit.AuditEvent(
            actor=actor,
            action=EXTENDED,
            object_type="experiment",
            object_id=experiment.start.isoformat(),
            detail={
                "from": audited.end.isoformat(),
                "end": experiment.end.isoformat(),
                "reason": reason.strip(),
                "compliance_digest": dpia.compliance_digest,
                "dpia_generated_at": dpia.generated_at.isoformat(),
            },
        ),
        at=now,
    )
    result = audited_end(session)
    assert result is not None
    return result


def _deleted(result: object) -> int:
    return int(result.rowcount or 0) if isinstance(result, CursorResult) else 0


def purge_all(session: Session, now: datetime, actor: str = "system") -> PurgeReport:
    """At the end of the experiment: delete every event-derived row, in the caller's
    transaction, and audit the counts. Users, tokens, the sensor inventory and the audit
    log itself stay (accounts to close, equipment to remove, accountability)."""
    report = PurgeReport(
        transitions=_deleted(session.execute(delete(IncidentTransition))),
        feedback=_deleted(session.execute(delete(Feedback))),
        detections=_deleted(session.execute(delete(Detection))),
        incidents=_deleted(session.execute(delete(Incident))),
        dead_letters=_deleted(session.execute(delete(DeadLetter))),
        sessions=_deleted(session.execute(delete(UserSession))),
    )
    audit.record(
        session,
        audit.AuditEvent(
            actor=actor,
            action=ENDED,
            object_type="experiment",
            object_id=now.date().isoformat(),
            detail=report.model_dump(),
        ),
        at=now,
    )
    return report


# --------------------------------------------------------------------------- progress


class CriterionStatus(StrictModel):
    """One success criterion against what the operators' feedback shows so far."""

    key: Literal["precision", "false_alerts", "ack"]
    threshold: float
    measured: float | None
    met: bool | None = Field(description="None: not enough judged alerts yet")


class ExperimentProgress(StrictModel):
    """What the console's statistics page shows of the experiment."""

    since: date = Field(description="start of the evaluation period (or of the experiment)")
    end: date
    days: int = Field(description="listening days counted so far")
    judged: int = Field(description="alerts judged true or false by an operator")
    min_feedback: int
    criteria: list[CriterionStatus]
    stop: list[str] = Field(description="stop criteria already reached (keys)")


def progress(
    session: Session,
    experiment: Experiment,
    sensors: int,
    now: datetime,
    ack_median_s: float | None = None,
) -> ExperimentProgress:
    """The success and stop criteria against the feedback recorded since the evaluation
    period began. Precision is read only after ``min_feedback`` judged alerts; false alerts
    per sensor-day divide the alerts judged false by sensors × days elapsed."""
    since = experiment.phases.evaluation if experiment.phases is not None else experiment.start
    start = datetime.combine(since, time(0), ZoneInfo(experiment.timezone))
    days = max(1, (now - start).days + (1 if now >= start else 0))
    overall = precision_stats(session, start)["overall"]
    true_alarms, false_alarms = int(overall["true_alarm"]), int(overall["false_alarm"])
    judged = true_alarms + false_alarms
    enough = judged >= experiment.success.min_feedback
    precision = true_alarms / judged if judged else None
    per_sensor_day = false_alarms / (max(sensors, 1) * days) if now >= start else None
    success = experiment.success
    criteria = [
        CriterionStatus(
            key="precision",
            threshold=success.min_precision,
            measured=precision,
            met=(precision >= success.min_precision) if enough and precision is not None else None,
        ),
        CriterionStatus(
            key="false_alerts",
            threshold=success.max_false_alerts_per_sensor_day,
            measured=per_sensor_day,
            met=(per_sensor_day <= success.max_false_alerts_per_sensor_day)
            if enough and per_sensor_day is not None
            else None,
        ),
    ]
    if success.max_median_ack_s is not None:
        criteria.append(
            CriterionStatus(
                key="ack",
                threshold=success.max_median_ack_s,
                measured=ack_median_s,
                met=(ack_median_s <= success.max_median_ack_s)
                if enough and ack_median_s is not None
                else None,
            )
        )
    stop = []
    floor = experiment.stop.below_precision
    if enough and precision is not None and floor is not None and precision < floor:
        stop.append("precision")
    limit = experiment.stop.above_false_alerts_per_sensor_day
    if enough and per_sensor_day is not None and limit is not None and per_sensor_day > limit:
        stop.append("false_alerts")
    return ExperimentProgress(
        since=since,
        end=experiment.end,
        days=days,
        judged=judged,
        min_feedback=success.min_feedback,
        criteria=criteria,
        stop=stop,
    )
