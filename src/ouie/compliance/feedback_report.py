"""``ouie report feedback``: what the testers' (operators') feedback says, for the controller,
the prefect and the dossier's annex (issue 20, part 3).

Read from the hub's database, never written to it: for every incident opened in the period,
its latest feedback (the same rule as the console's precision, ``hub.incidents``) is
``true_alarm``, ``false_alarm``, ``unsure`` or absent (unrated). From that:

- precision = true / (true + false), with a Wilson 95 % score interval, overall, per sensor
  (an incident counts for every sensor that heard it), per class and per ISO week;
- false alerts per sensor-day = alerts judged false / (sensors × listening days), as the
  console's statistics page computes it (``hub.experiment.progress``); per sensor, that
  sensor's false alerts / listening days;
- the real causes operators gave, time to acknowledge (first ``acknowledged`` transition);
- each success and stop criterion of ``compliance.experiment`` met, not met, or undecided
  (fewer than ``min_feedback`` judged alerts).

The report holds aggregates only: no position, no operator name, no comment text.
Outputs (in ``--out``): ``report.json`` (:class:`FeedbackReport`), ``report.md`` and, with
matplotlib, ``feedback-weekly.png``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ouie.config.compliance import Experiment
from ouie.core.model_base import StrictModel
from ouie.hub.db import Detection, Feedback, Incident, IncidentTransition, Sensor

ReportLang = Literal["fr", "en"]
SCHEMA: Literal["ouie.feedback-report/1"] = "ouie.feedback-report/1"
Z95 = 1.959963984540054  # two-sided 95 % normal quantile


class ReportError(ValueError):
    """The period or the inputs cannot make a report."""


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion ``successes / n``; None when ``n`` is 0.

    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at 0/n or
    n/n, which is where a small experiment's precision often sits."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n}")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


# --------------------------------------------------------------------------- models


class Tally(StrictModel):
    """Incidents of one group (all, a sensor, a class, a week) by their latest verdict."""

    key: str
    incidents: int
    true_alarm: int
    false_alarm: int
    unsure: int
    unrated: int
    precision: float | None = Field(description="true / (true + false); None: none judged")
    ci_low: float | None = Field(description="Wilson 95 % interval of the precision")
    ci_high: float | None
    causes: dict[str, int] = Field(description="real causes given, lower-cased, with counts")


class SensorTally(Tally):
    false_alerts_per_sensor_day: float = Field(description="its false alerts / listening days")


class Criterion(StrictModel):
    """One success or stop criterion of the experiment against the feedback."""

    key: Literal["precision", "false_alerts", "ack"]
    kind: Literal["success", "stop"]
    threshold: float
    measured: float | None
    met: bool | None = Field(
        description="success: met; stop: reached. None: fewer judged alerts than min_feedback"
        " or nothing measured"
    )
    at_95: Literal["met", "not_met", "undecided"] | None = Field(
        default=None,
        description="precision only: the Wilson interval lies entirely on one side of the "
        "threshold (met / not_met), or straddles it (undecided)",
    )


class AckTimes(StrictModel):
    n: int = Field(description="incidents acknowledged")
    median_s: float | None
    p90_s: float | None


class FeedbackReport(StrictModel):
    """``report.json`` of ``ouie report feedback`` (read by ``ouie dossier --feedback-json``)."""

    schema_id: Literal["ouie.feedback-report/1"] = SCHEMA
    generated_at: datetime
    since: date = Field(description="first day of the period (inclusive, local time)")
    until: date = Field(description="last day of the period (inclusive, local time)")
    timezone: str
    days: int = Field(description="listening days counted: the period, cut at today")
    sensors: int = Field(description="sensors in the hub's inventory")
    sensor_days: int
    overall: Tally
    false_alerts_per_sensor_day: float | None
    per_sensor: list[SensorTally]
    per_class: list[Tally]
    per_week: list[Tally] = Field(description="ISO weeks (YYYY-Www) of the incident's opening")
    ack: AckTimes
    min_feedback: int | None = Field(description="judged alerts before criteria are read")
    enough_feedback: bool | None
    criteria: list[Criterion] = Field(description="empty: no compliance.experiment configured")
    stop_reached: list[str] = Field(description="keys of the stop criteria reached")


# --------------------------------------------------------------------------- reading


class _Row(StrictModel):
    incident_id: str
    label: str
    created_at: datetime
    verdict: str | None
    cause: str


def _tally(key: str, rows: Iterable[_Row]) -> Tally:
    counts: Counter[str] = Counter()
    causes: Counter[str] = Counter()
    n = 0
    for row in rows:
        n += 1
        counts[row.verdict or "unrated"] += 1
        if row.verdict is not None and row.cause.strip():
            causes[" ".join(row.cause.lower().split())] += 1
    true, false = counts["true_alarm"], counts["false_alarm"]
    interval = wilson(true, true + false)
    return Tally(
        key=key,
        incidents=n,
        true_alarm=true,
        false_alarm=false,
        unsure=counts["unsure"],
        unrated=counts["unrated"],
        precision=true / (true + false) if true + false else None,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        causes=dict(sorted(causes.items(), key=lambda item: (-item[1], item[0]))),
    )


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def default_period(
    experiment: Experiment | None, today: date, since: date | None, until: date | None
) -> tuple[date, date]:
    """``since`` defaults to the evaluation phase (else the experiment's start, else 28 days
    ago), ``until`` to the experiment's end or today, whichever comes first."""
    if since is None:
        if experiment is not None:
            since = experiment.phases.evaluation if experiment.phases else experiment.start
        else:
            since = today - timedelta(days=27)
    if until is None:
        until = min(experiment.end, today) if experiment is not None else today
    if until < since:
        raise ReportError(f"the period ends ({until}) before it starts ({since})")
    return since, until


def build_report(
    session: Session,
    experiment: Experiment | None,
    since: date,
    until: date,
    now: datetime,
    timezone: str | None = None,
) -> FeedbackReport:
    """The report for incidents opened from ``since`` to ``until`` (inclusive local days)."""
    if until < since:
        raise ReportError(f"the period ends ({until}) before it starts ({since})")
    zone_name = timezone or (experiment.timezone if experiment is not None else "UTC")
    zone = ZoneInfo(zone_name)
    start = datetime.combine(since, time(0), zone)
    stop = datetime.combine(until + timedelta(days=1), time(0), zone)
    today = now.astimezone(zone).date()
    days = max(0, (min(until, today) - since).days + 1)

    latest = (
        select(Feedback.incident_id, func.max(Feedback.id).label("fid"))
        .group_by(Feedback.incident_id)
        .subquery()
    )
    query = (
        select(Incident.id, Incident.label, Incident.created_at, Feedback.verdict, Feedback.cause)
        .outerjoin(latest, latest.c.incident_id == Incident.id)
        .outerjoin(Feedback, Feedback.id == latest.c.fid)
        .where(Incident.created_at >= start, Incident.created_at < stop)
        .order_by(Incident.created_at, Incident.id)
    )
    rows = [
        _Row(
            incident_id=incident_id,
            label=label,
            created_at=created,
            verdict=verdict,
            cause=cause or "",
        )
        for incident_id, label, created, verdict, cause in session.execute(query).all()
    ]
    by_id = {row.incident_id: row for row in rows}

    sensor_names = [
        f"{site}/{sensor_id}"
        for site, sensor_id in session.execute(
            select(Sensor.site, Sensor.sensor_id).order_by(Sensor.site, Sensor.sensor_id)
        ).all()
    ]
    per_sensor_rows: dict[str, list[_Row]] = {name: [] for name in sensor_names}
    if by_id:
        heard = session.execute(
            select(Detection.incident_id, Detection.site, Detection.sensor_id)
            .where(Detection.incident_id.in_(list(by_id)))
            .distinct()
        ).all()
        for incident_id, site, sensor_id in heard:
            if incident_id is not None:
                per_sensor_rows.setdefault(f"{site}/{sensor_id}", []).append(by_id[incident_id])
    per_sensor = []
    for name, group in sorted(per_sensor_rows.items()):
        tally = _tally(name, group)
        per_sensor.append(
            SensorTally(
                **tally.model_dump(),
                false_alerts_per_sensor_day=tally.false_alarm / days if days else 0.0,
            )
        )

    per_label: dict[str, list[_Row]] = defaultdict(list)
    per_week: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        per_label[row.label].append(row)
        iso = row.created_at.astimezone(zone).isocalendar()
        per_week[f"{iso.year}-W{iso.week:02d}"].append(row)

    acks: dict[str, float] = {}
    if by_id:
        for incident_id, at in session.execute(
            select(IncidentTransition.incident_id, IncidentTransition.at)
            .where(
                IncidentTransition.incident_id.in_(list(by_id)),
                IncidentTransition.to_state == "acknowledged",
            )
            .order_by(IncidentTransition.id)
        ).all():
            created = by_id[incident_id].created_at
            acks.setdefault(incident_id, max((at - created).total_seconds(), 0.0))
    ack_values = sorted(acks.values())
    ack = AckTimes(
        n=len(ack_values), median_s=_quantile(ack_values, 0.5), p90_s=_quantile(ack_values, 0.9)
    )

    overall = _tally("all", rows)
    sensors = len(sensor_names)
    sensor_days = sensors * days
    per_sensor_day = overall.false_alarm / sensor_days if sensor_days else None
    criteria, stop_reached, enough = _criteria(experiment, overall, per_sensor_day, ack.median_s)
    return FeedbackReport(
        generated_at=now.astimezone(UTC),
        since=since,
        until=until,
        timezone=zone_name,
        days=days,
        sensors=sensors,
        sensor_days=sensor_days,
        overall=overall,
        false_alerts_per_sensor_day=per_sensor_day,
        per_sensor=per_sensor,
        per_class=[_tally(label, group) for label, group in sorted(per_label.items())],
        per_week=[_tally(week, group) for week, group in sorted(per_week.items())],
        ack=ack,
        min_feedback=experiment.success.min_feedback if experiment is not None else None,
        enough_feedback=enough,
        criteria=criteria,
        stop_reached=stop_reached,
    )


def _criteria(
    experiment: Experiment | None,
    overall: Tally,
    per_sensor_day: float | None,
    ack_median_s: float | None,
) -> tuple[list[Criterion], list[str], bool | None]:
    """Success and stop criteria, read as ``hub.experiment.progress`` reads them: only after
    ``min_feedback`` judged alerts. Precision also gets a verdict at 95 % confidence."""
    if experiment is None:
        return [], [], None
    success, stop = experiment.success, experiment.stop
    judged = overall.true_alarm + overall.false_alarm
    enough = judged >= success.min_feedback
    precision = overall.precision

    def at_95(threshold: float, above_is_met: bool) -> Literal["met", "not_met", "undecided"]:
        assert overall.ci_low is not None and overall.ci_high is not None
        if overall.ci_low >= threshold:
            return "met" if above_is_met else "not_met"
        if overall.ci_high < threshold:
            return "not_met" if above_is_met else "met"
        return "undecided"

    criteria = [
        Criterion(
            key="precision",
            kind="success",
            threshold=success.min_precision,
            measured=precision,
            met=precision >= success.min_precision if enough and precision is not None else None,
            at_95=at_95(success.min_precision, True) if precision is not None else None,
        ),
        Criterion(
            key="false_alerts",
            kind="success",
            threshold=success.max_false_alerts_per_sensor_day,
            measured=per_sensor_day,
            met=per_sensor_day <= success.max_false_alerts_per_sensor_day
            if enough and per_sensor_day is not None
            else None,
        ),
    ]
    if success.max_median_ack_s is not None:
        criteria.append(
            Criterion(
                key="ack",
                kind="success",
                threshold=success.max_median_ack_s,
                measured=ack_median_s,
                met=ack_median_s <= success.max_median_ack_s
                if enough and ack_median_s is not None
                else None,
            )
        )
    reached = []
    if stop.below_precision is not None:
        hit = precision < stop.below_precision if enough and precision is not None else None
        criteria.append(
            Criterion(
                key="precision",
                kind="stop",
                threshold=stop.below_precision,
                measured=precision,
                met=hit,
                at_95=at_95(stop.below_precision, False) if precision is not None else None,
            )
        )
        if hit:
            reached.append("precision")
    if stop.above_false_alerts_per_sensor_day is not None:
        limit = stop.above_false_alerts_per_sensor_day
        hit = per_sensor_day > limit if enough and per_sensor_day is not None else None
        criteria.append(
            Criterion(
                key="false_alerts", kind="stop", threshold=limit, measured=per_sensor_day, met=hit
            )
        )
        if hit:
            reached.append("false_alerts")
    return criteria, reached, enough


# --------------------------------------------------------------------------- writing

_PLOT_TEXT = {
    "fr": ("Précision par semaine (IC 95 % de Wilson)", "semaine ISO", "précision", "seuil"),
    "en": ("Precision per week (Wilson 95 % CI)", "ISO week", "precision", "threshold"),
}


def weekly_plot(report: FeedbackReport, out: Path, lang: ReportLang = "fr") -> Path | None:
    """Precision per ISO week with its interval and the success threshold; None when no
    week has a judged alert."""
    weeks = [w for w in report.per_week if w.precision is not None]
    if not weeks:
        return None
    from matplotlib.figure import Figure

    title, xlabel, ylabel, threshold_word = _PLOT_TEXT[lang]
    fig = Figure(figsize=(7.0, 3.6), dpi=150)
    ax = fig.add_subplot(1, 1, 1)
    xs = list(range(len(weeks)))
    values = [w.precision or 0.0 for w in weeks]
    lows = [v - (w.ci_low or 0.0) for v, w in zip(values, weeks, strict=True)]
    highs = [(w.ci_high or 0.0) - v for v, w in zip(values, weeks, strict=True)]
    ax.errorbar(xs, values, yerr=[lows, highs], fmt="o", capsize=3, color="#1f4e79")
    for criterion in report.criteria:
        if criterion.key == "precision" and criterion.kind == "success":
            ax.axhline(criterion.threshold, color="#b03a2e", linestyle="--", label=threshold_word)
            ax.legend(loc="lower right")
    ax.set_xticks(xs, [w.key for w in weeks], rotation=45, ha="right", fontsize=7)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out)
    return out


def read_report(path: Path) -> FeedbackReport:
    try:
        return FeedbackReport.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: not an `ouie report feedback` JSON ({exc})") from exc


def write_report(
    report: FeedbackReport, out: Path, lang: ReportLang = "fr", plot: bool = True
) -> list[Path]:
    """Write ``report.json``, ``report.md`` and (``plot``) ``feedback-weekly.png``."""
    from ouie.compliance.dpia import render
    from ouie.core.labels import EVENT_LABELS
    from ouie.web.i18n import translate

    out.mkdir(parents=True, exist_ok=True)
    written = []
    json_path = out / "report.json"
    json_path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    written.append(json_path)
    figure = weekly_plot(report, out / "feedback-weekly.png", lang) if plot else None
    md_path = out / "report.md"
    names = {str(label): translate(lang, f"label.{label}") for label in EVENT_LABELS}
    md_path.write_text(
        render(
            f"feedback_{lang}.md.j2",
            {"f": report, "figure": figure.name if figure else None, "label_names": names},
        ),
        encoding="utf-8",
    )
    written.append(md_path)
    if figure is not None:
        written.append(figure)
    return written


def generate_feedback_report(
    config: Path,
    out: Path,
    since: date | None = None,
    until: date | None = None,
    lang: ReportLang = "fr",
    plot: bool = True,
    now: datetime | None = None,
) -> list[Path]:
    """Read the database of the hub configured in ``config`` (read only: no migration, no
    write) and write the report into ``out``."""
    from sqlalchemy import inspect

    from ouie.config.hub import load_hub_settings
    from ouie.hub.db import make_engine, session_factory

    settings = load_hub_settings(config)
    experiment = settings.compliance.experiment
    moment = now if now is not None else datetime.now(UTC)
    zone = ZoneInfo(experiment.timezone if experiment is not None else "UTC")
    since, until = default_period(experiment, moment.astimezone(zone).date(), since, until)
    url = settings.database.url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise ReportError(f"no hub database at {url.removeprefix('sqlite:///')}")
    engine = make_engine(url)
    try:
        if not inspect(engine).has_table(Incident.__tablename__):
            raise ReportError("the database has no incidents table: not a migrated ouie hub")
        with session_factory(engine)() as session:
            report = build_report(session, experiment, since, until, moment)
    finally:
        engine.dispose()
    return write_report(report, out, lang, plot)
