"""``ouie report feedback``: the testers' report, counted exactly from a hub database with
known incidents and operators' feedback, and the dossier's annex built from its JSON."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ouie.cli import app
from ouie.compliance.dossier import generate_dossier
from ouie.compliance.feedback_report import (
    FeedbackReport,
    ReportError,
    build_report,
    default_period,
    wilson,
)
from ouie.config.compliance import Experiment, StopCriteria, SuccessCriteria
from ouie.hub.db import (
    Detection,
    Feedback,
    Incident,
    IncidentTransition,
    Sensor,
    make_engine,
    migrate,
    session_factory,
)
from tests.compliance.test_dossier import PRODUCTION, _inputs

MONDAY = date(2025, 3, 3)  # ISO week 2025-W10
NOW = datetime(2025, 3, 20, 12, tzinfo=UTC)
SITE = "place"


def _experiment(min_feedback: int = 5) -> Experiment:
    return Experiment(
        start=date(2025, 2, 1),
        end=date(2025, 6, 30),
        timezone="UTC",
        success=SuccessCriteria(
            min_precision=0.8,
            max_false_alerts_per_sensor_day=0.2,
            min_feedback=min_feedback,
            max_median_ack_s=60.0,
        ),
        stop=StopCriteria(below_precision=0.5, above_false_alerts_per_sensor_day=1.0),
    )


class _Db:
    """A migrated SQLite hub database with three sensors, filled incident by incident."""

    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path}"
        self.engine = make_engine(self.url)
        migrate(self.engine)
        self.sessions = session_factory(self.engine)
        self.count = 0
        with self.sessions() as session, session.begin():
            for i in (1, 2, 3):
                session.add(
                    Sensor(
                        site=SITE,
                        sensor_id=f"s{i}",
                        lat=48.0,
                        lon=2.0,
                        created_at=NOW - timedelta(days=60),
                    )
                )
        with self.sessions() as session:
            self.pks = {s.sensor_id: s.id for s in session.query(Sensor).all()}

    def incident(
        self,
        label: str,
        at: datetime,
        sensors: list[str],
        verdicts: list[tuple[str, str]] = (),  # type: ignore[assignment]
        ack_s: float | None = None,
    ) -> None:
        self.count += 1
        incident_id = f"i{self.count:04d}"
        with self.sessions() as session, session.begin():
            session.add(
                Incident(
                    id=incident_id,
                    site=SITE,
                    label=label,
                    created_at=at,
                    updated_at=at,
                    first_onset=at,
                    last_onset=at,
                    lat=48.0,
                    lon=2.0,
                    method="tdoa",
                    radius_m=10.0,
                )
            )
            session.flush()
            for n, sensor in enumerate(sensors):
                session.add(
                    Detection(
                        message_id=f"{incident_id}-{sensor}",
                        sensor_pk=self.pks[sensor],
                        site=SITE,
                        sensor_id=sensor,
                        label=label,
                        onset=at,
                        offset=at + timedelta(seconds=1),
                        peak_score=0.9,
                        level_dbfs=-20.0,
                        model_id="m",
                        sequence=self.count * 10 + n,
                        received_at=at,
                        source="bus",
                        incident_id=incident_id,
                    )
                )
            for k, (verdict, cause) in enumerate(verdicts):
                session.add(
                    Feedback(
                        incident_id=incident_id,
                        actor="agent-7",
                        verdict=verdict,
                        cause=cause,
                        comment="secret comment",
                        created_at=at + timedelta(minutes=5 + k),
                    )
                )
            if ack_s is not None:
                session.add(
                    IncidentTransition(
                        incident_id=incident_id,
                        from_state="new",
                        to_state="acknowledged",
                        actor="agent-7",
                        at=at + timedelta(seconds=ack_s),
                    )
                )


@pytest.fixture
def db(tmp_path: Path) -> _Db:
    """Two ISO weeks from Monday 3 March 2025, 12 incidents in the period, one after it."""
    hub = _Db(tmp_path / "hub.sqlite3")
    week1 = datetime.combine(MONDAY, datetime.min.time(), UTC) + timedelta(hours=22)
    week2 = week1 + timedelta(days=7)
    # week 1: six gunshots heard by s1 and s2; five true, one false (fireworks)
    for i in range(5):
        hub.incident("gunshot", week1 + timedelta(days=i), ["s1", "s2"], [("true_alarm", "")], 30.0)
    hub.incident(
        "gunshot", week1 + timedelta(days=5), ["s1", "s2"], [("false_alarm", "Fireworks ")], 90.0
    )
    # week 2: glass breaks heard by s3; the first was called false, then true: the latest counts
    hub.incident(
        "glass_breaking", week2, ["s3"], [("false_alarm", "door slam"), ("true_alarm", "")], 10.0
    )
    hub.incident(
        "glass_breaking", week2 + timedelta(days=1), ["s3"], [("false_alarm", "door slam")]
    )
    hub.incident(
        "glass_breaking", week2 + timedelta(days=2), ["s3"], [("false_alarm", "Door  slam")]
    )
    hub.incident("glass_breaking", week2 + timedelta(days=3), ["s3"], [("unsure", "")])
    # and two gunshots nobody rated
    hub.incident("gunshot", week2 + timedelta(days=4), ["s1"])
    hub.incident("gunshot", week2 + timedelta(days=5), ["s1"])
    # outside the period (Monday of the third week)
    hub.incident("gunshot", week2 + timedelta(days=7), ["s1"], [("false_alarm", "")])
    return hub


def _report(db: _Db, experiment: Experiment | None = None) -> FeedbackReport:
    with db.sessions() as session:
        return build_report(
            session,
            experiment if experiment is not None else _experiment(),
            MONDAY,
            MONDAY + timedelta(days=13),
            NOW,
        )


def test_wilson_interval_on_known_values() -> None:
    low, high = wilson(8, 10) or (0.0, 0.0)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson(0, 10) or (1.0, 1.0)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson(10, 10) or (0.0, 0.0)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == pytest.approx(1.0)
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_exact_counts_per_sensor_class_and_week(db: _Db) -> None:
    report = _report(db)
    o = report.overall
    assert (o.incidents, o.true_alarm, o.false_alarm, o.unsure, o.unrated) == (12, 6, 3, 1, 2)
    assert o.precision == pytest.approx(6 / 9)
    assert o.ci_low == pytest.approx(0.3542, abs=1e-4) and o.ci_high == pytest.approx(
        0.8794, abs=1e-4
    )
    assert o.causes == {"door slam": 2, "fireworks": 1}  # normalised; the overridden one gone
    assert report.days == 14 and report.sensors == 3 and report.sensor_days == 42
    assert report.false_alerts_per_sensor_day == pytest.approx(3 / 42)

    sensors = {t.key: t for t in report.per_sensor}
    assert list(sensors) == ["place/s1", "place/s2", "place/s3"]
    s1, s2, s3 = sensors.values()
    assert (s1.incidents, s1.true_alarm, s1.false_alarm, s1.unrated) == (8, 5, 1, 2)
    assert (s2.incidents, s2.true_alarm, s2.false_alarm, s2.unrated) == (6, 5, 1, 0)
    assert (s3.incidents, s3.true_alarm, s3.false_alarm, s3.unsure) == (4, 1, 2, 1)
    assert s3.false_alerts_per_sensor_day == pytest.approx(2 / 14)
    assert s3.precision == pytest.approx(1 / 3)

    classes = {t.key: t for t in report.per_class}
    assert classes["gunshot"].incidents == 8 and classes["gunshot"].precision == pytest.approx(
        5 / 6
    )
    assert classes["glass_breaking"].causes == {"door slam": 2}

    weeks = {t.key: t for t in report.per_week}
    assert list(weeks) == ["2025-W10", "2025-W11"]
    assert (weeks["2025-W10"].true_alarm, weeks["2025-W10"].false_alarm) == (5, 1)
    assert (weeks["2025-W11"].incidents, weeks["2025-W11"].unrated) == (6, 2)
    # ten acknowledged-or-not incidents: 5 × 30 s, 90 s, 10 s
    assert report.ack.n == 7 and report.ack.median_s == 30.0
    # aggregates only: nobody's name, no comment
    dumped = report.model_dump_json()
    assert "agent-7" not in dumped and "secret comment" not in dumped


def test_criteria_met_and_not_met(db: _Db) -> None:
    report = _report(db)
    crit = {(c.kind, c.key): c for c in report.criteria}
    assert report.enough_feedback is True
    precision = crit[("success", "precision")]
    assert precision.met is False and precision.at_95 == "undecided"  # 0.35..0.88 holds 0.8
    assert crit[("success", "false_alerts")].met is True  # 0.071 ≤ 0.2
    assert crit[("success", "ack")].met is True and crit[("success", "ack")].measured == 30.0
    assert crit[("stop", "precision")].met is False  # 0.667 is not below 0.5
    assert crit[("stop", "false_alerts")].met is False
    assert report.stop_reached == []


def test_a_stop_criterion_reached_and_too_little_feedback(db: _Db) -> None:
    strict = _experiment().model_copy(
        update={"stop": StopCriteria(below_precision=0.9, above_false_alerts_per_sensor_day=0.05)}
    )
    report = _report(db, strict)
    assert report.stop_reached == ["precision", "false_alerts"]
    stop = {c.key: c for c in report.criteria if c.kind == "stop"}
    assert stop["precision"].at_95 == "met"  # the whole interval (..0.879) is below 0.9
    early = _report(db, _experiment(min_feedback=50))
    assert early.enough_feedback is False
    assert all(c.met is None for c in early.criteria)
    assert early.stop_reached == []


def test_precision_settled_at_95_percent(tmp_path: Path) -> None:
    hub = _Db(tmp_path / "hub.sqlite3")
    start = datetime.combine(MONDAY, datetime.min.time(), UTC)
    for i in range(40):
        hub.incident("gunshot", start + timedelta(hours=i), ["s1"], [("true_alarm", "")])
    report = _report(hub)
    precision = next(c for c in report.criteria if c.key == "precision" and c.kind == "success")
    assert precision.met is True and precision.at_95 == "met"  # Wilson 40/40: 0.912..1


def test_period_defaults_and_errors() -> None:
    exp = _experiment()
    assert default_period(exp, date(2025, 3, 20), None, None) == (exp.start, date(2025, 3, 20))
    assert default_period(None, date(2025, 3, 20), None, None) == (
        date(2025, 2, 21),
        date(2025, 3, 20),
    )
    with pytest.raises(ReportError):
        default_period(exp, date(2025, 3, 20), date(2025, 3, 10), date(2025, 3, 1))


def _hub_yaml(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "hub.yaml"
    experiment = json.loads(_experiment().model_dump_json())
    path.write_text(
        yaml.safe_dump({"database": {"url": url}, "compliance": {"experiment": experiment}}),
        encoding="utf-8",
    )
    return path


def test_cli_writes_json_markdown_and_plot(db: _Db, tmp_path: Path) -> None:
    config = _hub_yaml(tmp_path, db.url)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "report",
            "feedback",
            "--config",
            str(config),
            "--from",
            "2025-03-03",
            "--to",
            "2025-03-16",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = FeedbackReport.model_validate_json((out / "report.json").read_text(encoding="utf-8"))
    assert report.overall.incidents == 12 and report.days == 14
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "| **non évalués** | **2** |" in text
    assert "66,7 % [35,4 % ; 87,9 %]" in text
    assert "| précision | réussite | 80 % | 66,7 % | **non** | indécis |" in text
    assert "| place/s3 | 4 | 1 | 2 | 1 | 0 |" in text and "| 2025-W11 |" in text
    assert "door slam (2), fireworks (1)" in text
    assert (out / "feedback-weekly.png").read_bytes().startswith(b"\x89PNG")
    english = CliRunner().invoke(
        app,
        [
            *("report", "feedback", "--config", str(config), "--since", "2025-03-03"),
            *("--until", "2025-03-16", "--out", str(tmp_path / "en"), "--lang", "en", "--no-plot"),
        ],
    )
    assert english.exit_code == 0, english.output
    text = (tmp_path / "en" / "report.md").read_text(encoding="utf-8")
    assert "66.7 % [35.4 %, 87.9 %]" in text and "| **unrated** | **2** |" in text
    assert not (tmp_path / "en" / "feedback-weekly.png").exists()


def test_cli_refuses_a_missing_database(tmp_path: Path) -> None:
    config = _hub_yaml(tmp_path, f"sqlite:///{tmp_path / 'nope.sqlite3'}")
    result = CliRunner().invoke(
        app, ["report", "feedback", "--config", str(config), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "no hub database" in result.output
    assert not (tmp_path / "nope.sqlite3").exists()


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUIE_NODE__PUBLISH__MQTT__PASSWORD", "vJ3#qT9!mZ2$wK7pL4")


def test_dossier_annex_from_the_json_or_not_measured(db: _Db, tmp_path: Path) -> None:
    privacy, detection = _inputs(tmp_path)
    feedback = tmp_path / "report.json"
    feedback.write_text(_report(db).model_dump_json(), encoding="utf-8")
    generate_dossier(
        PRODUCTION, privacy, tmp_path / "with", detection, pdf=False, feedback_json=feedback
    )
    text = (tmp_path / "with" / "dossier.md").read_text(encoding="utf-8")
    assert "# Annexe — Retours des opérateurs" in text
    assert "retours des opérateurs (`ouie report feedback`, du 03/03/2025 au 16/03/2025)" in text
    assert "| **non évalués** | **2** |" in text and "| place/s1 | 8 | 5 | 1 | 0 | 2 |" in text
    # part 3.4 holds the measured figures against the configuration's thresholds: the
    # production example reads them only after 50 judged alerts
    assert "se mesure sur site uniquement | 66,7 % : pas encore lu (9 alertes jugées sur 50) |" in (
        text
    )
    assert "| 0,071 : pas encore lu" in text

    generate_dossier(PRODUCTION, privacy, tmp_path / "without", detection, pdf=False)
    text = (tmp_path / "without" / "dossier.md").read_text(encoding="utf-8")
    assert "Non mesuré : aucun rapport `ouie report feedback`" in text
    assert "se mesure sur site uniquement | non mesuré |" in text

    generate_dossier(
        PRODUCTION,
        privacy,
        tmp_path / "en",
        detection,
        lang="en",
        pdf=False,
        feedback_json=feedback,
    )
    text = (tmp_path / "en" / "dossier.md").read_text(encoding="utf-8")
    assert (
        "# Annex — Operators' feedback" in text
        and "measured on site only | 66.7 %: not read yet (9 of 50 judged alerts) |" in text
    )

    junk = tmp_path / "junk.json"
    junk.write_text("{}", encoding="utf-8")
    with pytest.raises(ReportError):
        generate_dossier(
            PRODUCTION, privacy, tmp_path / "x", detection, pdf=False, feedback_json=junk
        )


def test_docs_name_every_key_of_the_report() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "privacy.md").read_text(encoding="utf-8")
    section = docs.split("## `ouie report feedback`", 1)[1].split("\n## ", 1)[0]
    from ouie.compliance.feedback_report import AckTimes, Criterion, SensorTally

    for model in (FeedbackReport, SensorTally, Criterion, AckTimes):
        for name in model.model_fields:
            assert f"`{name}`" in section, f"{model.__name__}.{name} is not in docs/privacy.md"
