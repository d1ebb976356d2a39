"""A bounded experiment at run time: a production hub purges everything and stops at the end,
refuses to start after it, and accepts a later end only as an audited admin action backed by
a DPIA generated from exactly the configuration with that end."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from ouie.cli import app
from ouie.config.compliance import ComplianceSettings, Experiment, StopCriteria, SuccessCriteria
from ouie.config.hub import DatabaseSettings, HubSettings, RetentionSettings
from ouie.core.timebase import utc_now
from ouie.hub import audit, auth
from ouie.hub.db import AuditEntry, Detection, Feedback, Incident
from ouie.hub.experiment import (
    DECLARED,
    ENDED,
    EXTENDED,
    DpiaAttestation,
    ExperimentError,
    extend,
)
from ouie.hub.ingest import Envelope
from ouie.hub.service import Hub
from ouie.transport.base import encode
from tests.hub.helpers import SITE, events_for_source, register_sensors, sensor_grid

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


def _experiment(start: date, end: date) -> Experiment:
    return Experiment(
        start=start,
        end=end,
        success=SuccessCriteria(min_precision=0.8, max_false_alerts_per_sensor_day=0.2),
    )


def _hub(db: Path, experiment: Experiment, production: bool = True) -> Hub:
    settings = HubSettings(
        database=DatabaseSettings(url=f"sqlite:///{db}", batch_wait_ms=5.0),
        retention=RetentionSettings(days=30),
        compliance=ComplianceSettings(production=production, experiment=experiment),
    )
    hub = Hub(settings)
    hub.prepare()
    return hub


def _fill(hub: Hub) -> None:
    """Incidents, detections and an operator's feedback, as a running experiment has them."""
    layout = sensor_grid(4)
    register_sensors(hub, layout)
    now = utc_now()
    for i in range(3):
        events = events_for_source(layout, 5.0, -3.0, now - timedelta(minutes=i), sequence=i)
        hub.processor.process(
            [Envelope("bus", f"ouie/v1/{SITE}/{m.sensor_id}/events", encode(m)) for m in events]
        )
    with hub.sessions() as session, session.begin():
        incident = session.execute(select(Incident)).scalars().first()
        assert incident is not None
        session.add(
            Feedback(incident_id=incident.id, actor="op", verdict="true_alarm", created_at=now)
        )


def _count(hub: Hub, model: type) -> int:
    with hub.sessions() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def _actions(hub: Hub) -> list[str]:
    with hub.sessions() as session:
        return list(session.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars())


def test_at_the_end_the_hub_purges_everything_and_stops(tmp_path: Path) -> None:
    today = utc_now().date()
    experiment = _experiment(today - timedelta(days=30), today + timedelta(days=30))
    hub = _hub(tmp_path / "hub.sqlite3", experiment)
    try:
        _fill(hub)
        assert _count(hub, Incident) > 0 and _count(hub, Detection) > 0
        stops: list[str] = []
        hub.stop_requests.append(stops.append)
        hub.experiment_gate()  # the first production start declares the experiment
        assert hub.experiment_ends_at == experiment.ends_at()
        last_minute = experiment.ends_at() - timedelta(minutes=1)
        assert hub.experiment_check(last_minute) is False
        assert _count(hub, Incident) > 0 and stops == []
        assert hub.experiment_check(experiment.ends_at()) is True
        for model in (Incident, Detection, Feedback):
            assert _count(hub, model) == 0, model
        assert hub.experiment_over and stops == ["the experiment has ended"]
        actions = _actions(hub)
        assert actions.count(DECLARED) == 1 and actions[-1] == ENDED
        with hub.sessions() as session:
            ended = session.execute(
                select(AuditEntry).where(AuditEntry.action == ENDED)
            ).scalar_one()
            detail = json.loads(ended.detail)
            assert detail["incidents"] >= 1 and detail["feedback"] == 1
            assert audit.verify(session).ok
    finally:
        hub.close()


def test_the_end_is_midnight_after_the_last_day_in_local_time() -> None:
    experiment = _experiment(date(2027, 1, 4), date(2028, 6, 30))
    assert experiment.ends_at().isoformat() == "2028-07-01T00:00:00+02:00"
    assert experiment.days() == 544


def test_a_production_hub_refuses_to_start_after_the_end_and_purges(tmp_path: Path) -> None:
    hub = _hub(tmp_path / "hub.sqlite3", _experiment(date(2025, 1, 6), date(2025, 6, 30)))
    try:
        _fill(hub)
        with pytest.raises(ExperimentError, match="ended on 2025-06-30"):
            asyncio.run(hub.start())
        assert _count(hub, Incident) == 0 and _count(hub, Detection) == 0
        assert _actions(hub)[-2:] == [DECLARED, ENDED]
    finally:
        hub.close()


def test_outside_production_the_experiment_does_not_stop_the_hub(tmp_path: Path) -> None:
    hub = _hub(
        tmp_path / "hub.sqlite3",
        _experiment(date(2025, 1, 6), date(2025, 6, 30)),
        production=False,
    )
    try:
        hub.experiment_gate()
        assert hub.experiment_ends_at is None and _actions(hub) == []
    finally:
        hub.close()


def test_an_extension_needs_the_audited_action_and_a_regenerated_dpia(tmp_path: Path) -> None:
    today = utc_now().date()
    start = today - timedelta(days=10)
    first, later = today + timedelta(days=20), today + timedelta(days=200)
    db = tmp_path / "hub.sqlite3"
    hub = _hub(db, _experiment(start, first))
    hub.experiment_gate()  # declared with the first end
    hub.close()
    # the configuration is edited to a later end: without the audited action the hub refuses
    hub = _hub(db, _experiment(start, later))
    try:
        with pytest.raises(ExperimentError, match="ouie experiment extend"):
            hub.experiment_gate()
        comp = hub.settings.compliance
        now = utc_now()
        good = DpiaAttestation(
            start=start,
            end=later,
            compliance_digest=comp.digest(),
            generated_at=now,
        )
        bad = {
            "digest": good.model_copy(update={"compliance_digest": "0" * 64}),
            "assesses": good.model_copy(update={"end": first}),
            "predates": good.model_copy(update={"generated_at": now - timedelta(days=30)}),
        }
        for expected, attestation in bad.items():
            with hub.sessions() as session, session.begin(), pytest.raises(ExperimentError) as e:
                extend(session, comp, attestation, reason="council vote", actor="a", now=now)
            assert expected in str(e.value) or "regenerate" in str(e.value)
        with hub.sessions() as session, session.begin():
            result = extend(session, comp, good, reason="council vote", actor="alice", now=now)
        assert result.end == later and result.action == EXTENDED
        hub.experiment_gate()  # now accepted
        assert hub.experiment_ends_at == comp.experiment.ends_at()  # type: ignore[union-attr]
    finally:
        hub.close()


def test_extension_cli_with_a_dpia_generated_from_the_new_config(tmp_path: Path) -> None:
    """End to end: `ouie dpia` on the edited config, then `ouie experiment extend`."""
    from ouie.compliance.dpia import generate
    from ouie.compliance.leakage import write_report
    from tests.compliance.test_dpia import _report

    today = utc_now().date()
    raw = yaml.safe_load((REPO / "examples/production/hub.yaml").read_text(encoding="utf-8"))
    raw["database"]["url"] = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    experiment = raw["compliance"]["experiment"]
    experiment.pop("phases")
    experiment["reviews"] = []
    experiment["start"] = (today - timedelta(days=5)).isoformat()
    experiment["end"] = (today + timedelta(days=5)).isoformat()
    config = tmp_path / "hub.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    hub = Hub(HubSettings.model_validate(raw))
    hub.prepare()
    hub.experiment_gate()
    with hub.sessions() as session, session.begin():
        auth.create_user(session, "admin", PASSWORD, "admin", utc_now())
        auth.create_user(session, "op", PASSWORD, "operator", utc_now())
    hub.close()
    # the controller decides a later end, edits the config and regenerates the DPIA
    experiment["end"] = (today + timedelta(days=100)).isoformat()
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    privacy = tmp_path / "privacy.json"
    write_report(_report(), privacy)
    generate([config], privacy, tmp_path / "dpia", pdf=False)
    runner = CliRunner()
    args = ["experiment", "extend", "--config", str(config), "--dpia"]
    args += [str(tmp_path / "dpia" / "dpia-pia.json"), "--reason", "council vote of 2027-04-02"]
    refused = runner.invoke(app, [*args, "--admin", "op", "--password-stdin"], PASSWORD + "\n")
    assert refused.exit_code == 1 and "not an admin" in refused.output
    done = runner.invoke(app, [*args, "--admin", "admin", "--password-stdin"], PASSWORD + "\n")
    assert done.exit_code == 0, done.output
    assert f"extended to {experiment['end']}" in done.output
    again = runner.invoke(app, [*args, "--admin", "admin", "--password-stdin"], PASSWORD + "\n")
    assert again.exit_code == 1 and "not later than the end in force" in again.output
    hub = Hub(HubSettings.model_validate(raw))
    try:
        hub.prepare()
        hub.experiment_gate()  # the new end is the audited one
        with hub.sessions() as session:
            entry = session.execute(
                select(AuditEntry).where(AuditEntry.action == EXTENDED)
            ).scalar_one()
            assert entry.actor == "admin"
            assert json.loads(entry.detail)["reason"] == "council vote of 2027-04-02"
    finally:
        hub.close()


def test_experiment_dates_must_be_in_order() -> None:
    from pydantic import ValidationError

    success = SuccessCriteria(min_precision=0.8, max_false_alerts_per_sensor_day=0.2)
    with pytest.raises(ValidationError, match="before start"):
        Experiment(start=date(2027, 2, 1), end=date(2027, 1, 1), success=success)
    with pytest.raises(ValidationError, match="outside"):
        Experiment(
            start=date(2027, 1, 1),
            end=date(2027, 6, 1),
            reviews=[date(2028, 1, 1)],
            success=success,
        )
    with pytest.raises(ValidationError, match="in order"):
        Experiment.model_validate(
            {
                "start": "2027-01-01",
                "end": "2027-12-31",
                "success": success.model_dump(),
                "phases": {
                    "installation": "2027-01-01",
                    "calibration": "2027-03-01",
                    "evaluation": "2027-02-01",
                    "mid_term_review": "2027-06-01",
                    "decision": "2027-11-01",
                },
            }
        )
    with pytest.raises(ValidationError, match="time zone"):
        Experiment(
            start=date(2027, 1, 1), end=date(2027, 6, 1), timezone="Mars/Olympus", success=success
        )


def test_ouie_hub_past_the_end_purges_and_exits(tmp_path: Path) -> None:
    """`ouie hub` on examples/bad/experiment-ended.yaml: refused at start-up (the rule), and
    the data the experiment left behind are purged all the same."""
    db = tmp_path / "hub.sqlite3"
    filler = _hub(db, _experiment(date(2025, 1, 6), date(2025, 6, 30)), production=False)
    _fill(filler)
    filler.close()
    raw = yaml.safe_load((REPO / "examples/bad/experiment-ended.yaml").read_text("utf-8"))
    raw["database"]["url"] = f"sqlite:///{db}"
    config = tmp_path / "hub.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(app, ["hub", "--config", str(config)])
    assert result.exit_code == 2 and "experiment-ended" in result.output
    hub = Hub(HubSettings(database=DatabaseSettings(url=f"sqlite:///{db}")))
    try:
        assert _count(hub, Incident) == 0 and _count(hub, Detection) == 0
        assert _actions(hub)[-2:] == [DECLARED, ENDED]
    finally:
        hub.close()


def test_progress_reads_the_criteria_from_operators_feedback(tmp_path: Path) -> None:
    from ouie.hub.experiment import progress

    # the experiment's days are Europe/Paris days (its default timezone): "today" there
    today = utc_now().astimezone(ZoneInfo("Europe/Paris")).date()
    experiment = Experiment(
        start=today - timedelta(days=9),
        end=today + timedelta(days=100),
        success=SuccessCriteria(
            min_precision=0.8, max_false_alerts_per_sensor_day=0.2, min_feedback=3
        ),
        stop=StopCriteria(below_precision=0.7),
    )
    hub = _hub(tmp_path / "hub.sqlite3", experiment, production=False)
    try:
        _fill(hub)  # three incidents, one judged true
        with hub.sessions() as session:
            early = progress(session, experiment, 4, utc_now())
        assert early.judged == 1 and early.days == 10
        assert [c.met for c in early.criteria] == [None, None]  # fewer than 3 judged
        with hub.sessions() as session, session.begin():
            judged = set(session.execute(select(Feedback.incident_id)).scalars())
            ids = set(session.execute(select(Incident.id)).scalars()) - judged
            assert len(ids) == 2
            for incident_id in sorted(ids):
                session.add(
                    Feedback(
                        incident_id=incident_id,
                        actor="op",
                        verdict="false_alarm",
                        created_at=utc_now(),
                    )
                )
        with hub.sessions() as session:
            later = progress(session, experiment, 4, utc_now())
        assert later.judged == 3
        precision, false_alerts = later.criteria
        assert precision.measured == pytest.approx(1 / 3) and precision.met is False
        assert false_alerts.measured == pytest.approx(2 / (4 * 10)) and false_alerts.met is True
        assert later.stop == ["precision"]
    finally:
        hub.close()
