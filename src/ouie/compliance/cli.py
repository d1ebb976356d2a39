"""Commands of the compliance pack: ``ouie check``, ``ouie dpia``, ``ouie dossier``, ``ouie
experiment extend``, ``ouie report feedback`` and ``ouie eval privacy``.

``register(app, bench)`` adds ``check`` and ``dpia`` to the root app and ``privacy`` to the
``ouie eval`` group. Compliance sits above eval, so it reaches down into the group rather
than the eval CLI reaching up for this module.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ouie.eval.cli import eval_app

if TYPE_CHECKING:
    from ouie.config.node import NodeSettings
    from ouie.node.classifiers.base import Classifier


class RoleChoice(StrEnum):
    AUTO = "auto"
    NODE = "node"
    HUB = "hub"


class CheckFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def check(
    configs: Annotated[
        list[Path], typer.Argument(help="node and hub YAML files", show_default=False)
    ],
    role: Annotated[
        RoleChoice, typer.Option(help="force the role instead of detecting it")
    ] = RoleChoice.AUTO,
    strict: Annotated[bool, typer.Option(help="warnings fail too")] = False,
    output: Annotated[CheckFormat, typer.Option("--format", help="output format")] = (
        CheckFormat.TEXT
    ),
) -> None:
    """Check configs against the privacy and safety rules; exit 1 on any finding that
    must be fixed (one line per finding, with its rule id)."""
    from ouie.compliance.check import check_files
    from ouie.compliance.findings import Role, errors

    chosen: Role | None = None
    if role is not RoleChoice.AUTO:
        chosen = "node" if role is RoleChoice.NODE else "hub"
    findings = check_files(configs, chosen)
    failing = findings if strict else errors(findings)
    if output is CheckFormat.JSON:
        payload = {
            "passed": not failing,
            "findings": [
                {
                    "rule": f.rule,
                    "severity": f.severity,
                    "file": f.source,
                    "key": f.where,
                    "message": f.message,
                }
                for f in findings
            ],
        }
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        for finding in findings:
            typer.echo(finding.format(), err=finding.severity == "error")
        n_err = len(errors(findings))
        n_warn = len(findings) - n_err
        verdict = "FAILED" if failing else "passed"
        typer.echo(
            f"ouie check {verdict}: {len(configs)} file(s), {n_err} error(s), {n_warn} warning(s)"
        )
    if failing:
        raise typer.Exit(1)


def dpia(
    config: Annotated[
        list[Path],
        typer.Option("--config", help="hub YAML (with compliance:) and node YAML files"),
    ],
    eval_json: Annotated[
        Path, typer.Option("--eval-json", help="the JSON of a real `ouie eval privacy` run")
    ],
    out: Annotated[Path, typer.Option("--out", help="folder for the documents")],
    pdf: Annotated[bool, typer.Option(help="also render the DPIA as PDF")] = True,
) -> None:
    """Write the DPIA (GDPR art. 35; Markdown, PDF, CNIL PIA-style JSON), the art. 30
    register entry, the public notice (FR/EN) and the sensor map from config + measurements."""
    from ouie.compliance.dpia import DpiaError, generate
    from ouie.config.loader import ConfigError

    try:
        written = generate(config, eval_json, out, pdf=pdf)
    except (ConfigError, DpiaError, OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for path in written:
        typer.echo(str(path))


class DossierLangChoice(StrEnum):
    FR = "fr"
    EN = "en"


def dossier(
    config: Annotated[
        list[Path],
        typer.Option("--config", help="hub YAML (with compliance:) and node YAML files"),
    ],
    eval_json: Annotated[
        Path, typer.Option("--eval-json", help="the JSON of a real `ouie eval privacy` run")
    ],
    out: Annotated[Path, typer.Option("--out", help="folder for dossier.md and dossier.pdf")],
    detection_json: Annotated[
        Path | None,
        typer.Option(
            "--detection-json",
            help="the JSON of an `ouie eval --split source` run (recall, false alarms per "
            "sensor-day); without it the dossier says detection is not measured",
        ),
    ] = None,
    feedback_json: Annotated[
        Path | None,
        typer.Option(
            "--feedback-json",
            help="report.json of `ouie report feedback` (operators' feedback, an annex); "
            "without it the dossier says the criteria are not measured on site yet",
        ),
    ] = None,
    lang: Annotated[DossierLangChoice, typer.Option(help="language")] = DossierLangChoice.FR,
    pdf: Annotated[bool, typer.Option(help="also render the dossier as PDF")] = True,
) -> None:
    """Write the feasibility dossier for the prefect (technique, juridique, stratégie,
    calendrier) from the live configuration and measured `ouie eval` runs."""
    from ouie.compliance.dossier import generate_dossier
    from ouie.compliance.dpia import DpiaError
    from ouie.config.loader import ConfigError

    try:
        written = generate_dossier(
            config,
            eval_json,
            out,
            detection_json,
            lang=lang.value,
            pdf=pdf,
            feedback_json=feedback_json,
        )
    except (ConfigError, DpiaError, OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for path in written:
        typer.echo(str(path))


report_app = typer.Typer(
    name="report", help="Reports from the hub's records.", no_args_is_help=True
)


@report_app.command("feedback")
def report_feedback(
    config: Annotated[Path, typer.Option("--config", help="the hub YAML (database, experiment)")],
    out: Annotated[Path, typer.Option("--out", help="folder for report.md and report.json")],
    since: Annotated[
        datetime | None,
        typer.Option(
            "--from",
            "--since",
            formats=["%Y-%m-%d"],
            help="first day (default: the experiment's evaluation phase, or its start)",
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(
            "--to",
            "--until",
            formats=["%Y-%m-%d"],
            help="last day, inclusive (default: today, or the experiment's end)",
        ),
    ] = None,
    lang: Annotated[DossierLangChoice, typer.Option(help="language")] = DossierLangChoice.FR,
    plot: Annotated[bool, typer.Option(help="also draw precision per week (PNG)")] = True,
) -> None:
    """The testers' report: operators' feedback per sensor, class and ISO week, precision
    with 95 % intervals, false alerts per sensor-day, unrated incidents, time to acknowledge,
    against the experiment's success and stop criteria."""
    from ouie.compliance.feedback_report import ReportError, generate_feedback_report
    from ouie.config.loader import ConfigError

    try:
        written = generate_feedback_report(
            config,
            out,
            since.date() if since is not None else None,
            until.date() if until is not None else None,
            lang=lang.value,
            plot=plot,
        )
    except (ConfigError, ReportError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for path in written:
        typer.echo(str(path))


experiment_app = typer.Typer(
    name="experiment", help="The bounded experiment (compliance.experiment).", no_args_is_help=True
)


@experiment_app.command("extend")
def experiment_extend(
    config: Annotated[
        Path, typer.Option("--config", help="the hub YAML with the new compliance.experiment.end")
    ],
    dpia_json: Annotated[
        Path,
        typer.Option("--dpia", help="dpia-pia.json of `ouie dpia` run on that same config"),
    ],
    reason: Annotated[str, typer.Option(help="the controller's decision, for the audit log")],
    admin: Annotated[str, typer.Option(help="an admin user of the hub")],
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
) -> None:
    """Record an extension of the experiment in the hub's audit log (admin only), accepted
    only with a DPIA generated from this configuration for the new end."""
    import json

    from pydantic import ValidationError

    from ouie.config.hub import load_hub_settings
    from ouie.config.loader import ConfigError
    from ouie.core.timebase import utc_now
    from ouie.hub import auth
    from ouie.hub.experiment import DpiaAttestation, ExperimentError, extend
    from ouie.hub.service import Hub

    try:
        settings = load_hub_settings(config)
        block = json.loads(dpia_json.read_text(encoding="utf-8")).get("ouie", {})
        attestation = DpiaAttestation.model_validate(block.get("experiment"))
    except (ConfigError, OSError, ValueError, ValidationError, AttributeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True)
    hub = Hub(settings)
    try:
        hub.prepare()
        with hub.sessions() as session, session.begin():
            user = auth.authenticate_password(session, admin, password)
            if user is None or user.role != auth.Role.ADMIN.value:
                raise ExperimentError(f"{admin} is not an admin of this hub (or wrong password)")
            result = extend(
                session,
                settings.compliance,
                attestation,
                reason=reason,
                actor=admin,
                now=utc_now(),
            )
    except ExperimentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        hub.close()
    typer.echo(f"experiment extended to {result.end} (audit entry {result.seq})")


def eval_privacy(
    json_out: Annotated[Path, typer.Option("--json", help="write the figures here")],
    data: Annotated[
        Path | None,
        typer.Option(help="dataset folder with labels.csv (clips labelled `speech`)"),
    ] = None,
    espeak: Annotated[bool, typer.Option(help="include espeak-ng speech")] = True,
    backend: Annotated[
        str | None,
        typer.Option(help="classifier backend (default: the config's, else the first that loads)"),
    ] = None,
    model_dir: Annotated[Path | None, typer.Option(help="model folder")] = None,
    config: Annotated[
        Path | None, typer.Option(help="node YAML whose event and privacy settings to use")
    ] = None,
    max_clips: Annotated[
        int | None, typer.Option(min=1, help="at most this many dataset speech clips")
    ] = None,
    watch: Annotated[
        list[Path] | None,
        typer.Option(help="folders to watch for audio files (default: tmp, cwd, home)"),
    ] = None,
) -> None:
    """Run speech and speech mixtures through the real node; report events on speech,
    suppression rate, bytes per hour, largest message and audio files written (must be 0)."""
    from rich.console import Console

    from ouie.compliance.leakage import (
        BuildNotes,
        PrivacyEvalError,
        build_recordings,
        clean_background_screen,
        run_privacy_eval,
        write_report,
    )
    from ouie.config.loader import ConfigError, load_settings
    from ouie.config.node import NodeSettings
    from ouie.node.classifiers.base import ClassifierError

    err = Console(stderr=True)
    try:
        settings = load_settings(NodeSettings, config)
        classifier, used = _classifier(settings, backend, model_dir)
    except (ConfigError, ClassifierError, RuntimeError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    wanted = backend or settings.classifier.backend
    if used != wanted:
        err.print(f"[yellow]backend {wanted} unavailable; using {used}[/yellow]")
    count = 0

    def progress(_recording: object) -> None:
        nonlocal count
        count += 1
        if count % 25 == 0:
            err.print(f"  {count} recordings…", highlight=False)

    notes = BuildNotes()
    screen = clean_background_screen(classifier, settings.events, settings.privacy)
    try:
        report = run_privacy_eval(
            classifier,
            lambda: build_recordings(data, espeak, max_clips, screen=screen, notes=notes),
            backend=used,
            events=settings.events,
            privacy=settings.privacy,
            watch_roots=watch or None,
            data_dir=data,
            espeak_used=espeak,
            progress=progress,
        )
    except (PrivacyEvalError, OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    report = report.model_copy(
        update={
            "backgrounds_used": notes.backgrounds_used,
            "backgrounds_rejected": notes.backgrounds_rejected,
        }
    )
    write_report(report, json_out)
    rate = "n/a" if report.suppression_rate is None else f"{report.suppression_rate:.3f}"
    Console().print(
        f"speech: {report.speech_recordings} recordings, {report.speech_seconds:.0f} s; "
        f"events on speech {report.events_on_speech}; candidates {report.speech_candidates}, "
        f"suppression rate {rate}\n"
        f"messages: {report.bytes_per_hour:.0f} bytes/hour, largest "
        f"{report.largest_message_bytes} bytes ({report.largest_message_kind})\n"
        f"audio files written: {report.audio_files_written} "
        f"({report.watch_method} over {', '.join(report.watched_roots)})",
        highlight=False,
    )
    for failure in report.failures:
        err.print(f"[red]FAIL:[/red] {failure}", highlight=False)
    for event in report.speech_events:
        err.print(
            f"  {event.label} at {event.onset_s:.2f} s of {event.recording} ({event.set}), "
            f"score {event.peak_score:.3f}, speech heard: {event.speech_present}",
            highlight=False,
        )
    if not report.passed:
        raise typer.Exit(1)


def _classifier(
    settings: NodeSettings, backend: str | None, model_dir: Path | None
) -> tuple[Classifier, str]:
    """The requested backend; without one, the configured one (``auto`` unless the config
    names another) and then any backend that loads."""
    from ouie.node.classifiers.base import ClassifierError
    from ouie.node.classifiers.registry import backend_names, create_classifier

    base = settings.classifier.model_copy(
        update={"model_dir": model_dir} if model_dir is not None else {}
    )
    if backend is not None:
        return create_classifier(base.model_copy(update={"backend": backend})), backend
    tried: list[str] = []
    names = [base.backend, *(n for n in backend_names() if n != base.backend)]
    for name in names:
        try:
            return create_classifier(base.model_copy(update={"backend": name})), name
        except (ClassifierError, RuntimeError) as exc:
            tried.append(f"{name}: {exc}")
    raise ClassifierError("no classifier backend could be loaded:\n  " + "\n  ".join(tried))


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """``ouie check``, ``ouie dpia``, ``ouie dossier``, ``ouie experiment extend`` and
    ``ouie eval privacy``."""
    app.command()(check)
    app.command()(dpia)
    app.command()(dossier)
    app.add_typer(experiment_app)
    app.add_typer(report_app)
    eval_app.command("privacy")(eval_privacy)
