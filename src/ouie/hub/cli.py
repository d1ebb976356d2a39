"""``ouie hub`` (run the control-room hub), ``ouie user|sensor add``, ``ouie audit verify|export``
and ``ouie bench hub``. Heavy imports happen inside the commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ouie.config.hub import HubSettings

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="hub YAML (database URL etc.); OUIE_DATABASE_URL wins"),
]


def _settings(config: Path | None) -> HubSettings:
    from ouie.config.hub import load_hub_settings
    from ouie.config.loader import ConfigError

    try:
        return load_hub_settings(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _prepared_hub(config: Path | None):  # type: ignore[no-untyped-def]
    from ouie.hub.service import Hub

    hub = Hub(_settings(config))
    hub.prepare()
    return hub


def hub_command(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="listen address (overrides config)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (overrides config)")] = None,
    migrate_only: Annotated[bool, typer.Option(help="migrate the database and exit")] = False,
    log_level: Annotated[str, typer.Option(help="logging level")] = "info",
) -> None:
    """Run the hub: ingest (MQTT / HTTP), fusion, incidents, API, live stream, retention."""
    import logging

    import uvicorn

    from ouie.hub.service import Hub
    from ouie.web.app import create_hub_app  # API + console: this command is a composition root

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from ouie.compliance.check import ComplianceError, startup_check
    from ouie.privacy.scrub import install_log_scrubbing

    install_log_scrubbing()
    settings = _settings(config)
    try:
        startup_check(settings)  # logs findings; refuses to start in production mode
    except ComplianceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    hub = Hub(settings)
    if migrate_only:
        hub.prepare()
        typer.echo("database migrated")
        return
    app = create_hub_app(hub)
    uvicorn.run(
        app,
        host=host or settings.http.host,
        port=port if port is not None else settings.http.port,
        log_level=log_level.lower(),
    )


user_app = typer.Typer(name="user", help="Manage hub users.", no_args_is_help=True)
sensor_app = typer.Typer(name="sensor", help="Manage the sensor registry.", no_args_is_help=True)
audit_app = typer.Typer(name="audit", help="Check and export the audit log.", no_args_is_help=True)


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[str, typer.Option(help="viewer|operator|supervisor|auditor|admin")],
    config: ConfigOption = None,
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
    token: Annotated[bool, typer.Option(help="also create and print an API token")] = False,
) -> None:
    """Add a user (password prompted, or read from stdin)."""
    from ouie.core.timebase import utc_now
    from ouie.hub import audit, auth

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    hub = _prepared_hub(config)
    try:
        with hub.sessions() as session, session.begin():
            user = auth.create_user(session, username, password, role, utc_now())
            audit.record(
                session,
                audit.AuditEvent("cli", "user.added", "user", username, {"role": user.role}),
            )
            api_token = auth.create_api_token(session, user, "cli", utc_now()) if token else None
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        hub.close()
    typer.echo(f"user {username} added with role {role}")
    if api_token:
        typer.echo(f"api token: {api_token}")


@sensor_app.command("add")
def sensor_add(
    site: Annotated[str, typer.Argument(help="site id")],
    sensor_id: Annotated[str, typer.Argument(help="sensor id")],
    lat: Annotated[float, typer.Option(help="WGS84 latitude")],
    lon: Annotated[float, typer.Option(help="WGS84 longitude")],
    height: Annotated[float, typer.Option(help="microphone ellipsoidal height, m")] = 0.0,
    mount: Annotated[float, typer.Option(help="microphone height above the street, m")] = 4.0,
    mounting: Annotated[str, typer.Option(help="mounting description")] = "",
    calibration: Annotated[
        float | None, typer.Option(help="dB SPL of a 0 dBFS sine (calibration offset)")
    ] = None,
    name: Annotated[str, typer.Option(help="display name")] = "",
    config: ConfigOption = None,
) -> None:
    """Register a sensor and print its HTTP ingest token (shown once)."""
    from ouie.core.timebase import utc_now
    from ouie.hub import sensors

    hub = _prepared_hub(config)
    try:
        with hub.sessions() as session, session.begin():
            _, token = sensors.add_sensor(
                session,
                site=site,
                sensor_id=sensor_id,
                lat=lat,
                lon=lon,
                height_m=height,
                mounting_height_m=mount,
                mounting=mounting,
                calibration_db=calibration,
                name=name,
                actor="cli",
                now=utc_now(),
            )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        hub.close()
    typer.echo(f"sensor {site}/{sensor_id} added")
    typer.echo(f"ingest token: {token}")


@audit_app.command("verify")
def audit_verify(config: ConfigOption = None) -> None:
    """Recompute the hash chain; exit 1 if any entry was edited, deleted or reordered."""
    hub = _prepared_hub(config)
    try:
        result = hub.audit_verify()
    finally:
        hub.close()
    if result.ok:
        typer.echo(f"audit log intact: {result.entries} entries")
        return
    typer.echo(f"audit log BROKEN ({result.entries} entries read):", err=True)
    for problem in result.problems:
        typer.echo(f"  {problem}", err=True)
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    config: ConfigOption = None,
    out: Annotated[Path | None, typer.Option(help="JSON lines file (default: stdout)")] = None,
) -> None:
    """Write every audit entry, with its hashes, as JSON lines."""
    from ouie.hub import audit

    hub = _prepared_hub(config)
    try:
        with hub.sessions() as session:
            if out is None:
                for line in audit.export_jsonl(session):
                    sys.stdout.write(line + "\n")
            else:
                with out.open("w", encoding="utf-8") as handle:
                    for line in audit.export_jsonl(session):
                        handle.write(line + "\n")
    finally:
        hub.close()


def bench_hub(
    json_out: Annotated[Path | None, typer.Option("--json", help="write results as JSON")] = None,
    detections: Annotated[int, typer.Option(help="detections per database run")] = 20_000,
    mqtt_url: Annotated[
        str, typer.Option(help="broker URL, or 'auto' for a private, hub-tuned Mosquitto")
    ] = "auto",
    postgresql_url: Annotated[str | None, typer.Option(help="PostgreSQL URL")] = None,
) -> None:
    """Detections/s through Mosquitto into PostgreSQL and SQLite; fusion latency p50/p99."""
    from ouie.hub.bench import run_bench

    results = run_bench(
        detections=detections,
        mqtt_url=mqtt_url,
        postgresql_url=postgresql_url,
        log=lambda line: typer.echo(line, err=True),
    )
    text = json.dumps(results, indent=2)
    typer.echo(text)
    if json_out is not None:
        json_out.write_text(text + "\n", encoding="utf-8")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the hub's commands to the root app."""
    app.command("hub")(hub_command)
    app.add_typer(user_app)
    app.add_typer(sensor_app)
    app.add_typer(audit_app)
    bench.command("hub")(bench_hub)
