"""``ouie hub`` (run the control-room hub), ``ouie user|sensor add``, ``ouie audit verify|export``
and ``ouie bench hub``. Heavy imports happen inside the commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ouie.hub import identity_cli

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
    from ouie.hub.anchor import AnchorKeyError
    from ouie.hub.pki import PkiError
    from ouie.hub.service import Hub

    hub = Hub(_settings(config))
    try:
        hub.prepare()
    except (AnchorKeyError, PkiError) as exc:
        hub.close()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
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
        if any(f.rule == "experiment-ended" for f in exc.findings):
            _end_experiment(settings)  # the end purges even when the hub was down at the time
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    hub = Hub(settings)
    if migrate_only:
        hub.prepare()
        typer.echo("database migrated")
        return
    app = create_hub_app(hub)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host or settings.http.host,
            port=port if port is not None else settings.http.port,
            log_level=log_level.lower(),
            # uvicorn would believe X-Forwarded-For from loopback; the hub decides itself,
            # from http.trusted_proxies only (ouie.hub.proxies, issue 18)
            proxy_headers=False,
            server_header=False,
        )
    )
    # at the experiment's end the hub purges and asks the server to exit
    hub.stop_requests.append(lambda _reason: setattr(server, "should_exit", True))
    server.run()
    if hub.experiment_over:
        typer.echo("the experiment has ended: data purged, hub stopped", err=True)
        raise typer.Exit(3)
    if not server.started:  # start-up failed (e.g. an unaudited experiment extension)
        raise typer.Exit(3)


def _end_experiment(settings: HubSettings) -> None:
    from ouie.hub.experiment import ExperimentError
    from ouie.hub.service import Hub

    hub = Hub(settings)
    try:
        hub.prepare()
        hub.experiment_gate()
    except ExperimentError:
        pass  # expected: the gate purges past the end, then refuses
    finally:
        hub.close()


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
    """Add a user (password prompted, or read from stdin). The CLI is the bootstrap path: it
    needs the hub host and its database, so the two-admin rule of the API does not apply."""
    from datetime import timedelta

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
            ttl = timedelta(days=hub.settings.auth.token_ttl_days)
            api_token = (
                auth.create_api_token(session, user, "cli", utc_now(), ttl) if token else None
            )
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
    pki_dir: Annotated[
        Path | None,
        typer.Option(help="issue its certificate and signing key here (default: identity.pki_dir)"),
    ] = None,
) -> None:
    """Register a sensor and print its HTTP ingest token (shown once). With a site PKI
    (``ouie pki init``), also issue its client certificate and Ed25519 signing key: from then
    on the hub accepts only messages signed with that key (docs/security.md)."""
    from ouie.core.timebase import utc_now
    from ouie.hub import sensors
    from ouie.hub.identity_cli import issue_for_new_sensor, print_identity

    hub = _prepared_hub(config)
    identity = None
    try:
        with hub.sessions() as session, session.begin():
            if sensors.find(session, site, sensor_id) is not None:  # before touching its files
                raise sensors.SensorError(f"sensor {site}/{sensor_id} exists")
            identity = issue_for_new_sensor(hub.settings, pki_dir, site, sensor_id)
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
                signing_key=None if identity is None else identity.public_key.text,
                cert_fingerprint=None if identity is None else identity.certificate.fingerprint,
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
    if identity is None:
        typer.echo("no certificate or signing key issued: the hub has no identity.pki_dir")
    else:
        print_identity(identity)


@user_app.command("tokens")
def user_tokens(
    username: Annotated[str, typer.Argument(help="login name")],
    config: ConfigOption = None,
) -> None:
    """List a user's API tokens (id, name, expiry, revoked)."""
    from ouie.hub import auth

    hub = _prepared_hub(config)
    try:
        with hub.sessions() as session:
            user = auth.find_user(session, username)
            if user is None:
                typer.echo(f"error: no user {username!r}", err=True)
                raise typer.Exit(2)
            for row in auth.list_api_tokens(session, user.id):
                state = f"revoked {row.revoked_at.isoformat()}" if row.revoked_at else "active"
                typer.echo(f"{row.id}\t{row.name}\texpires {row.expires_at.isoformat()}\t{state}")
    finally:
        hub.close()


@user_app.command("revoke")
def user_revoke(
    username: Annotated[str, typer.Argument(help="login name")],
    token_id: Annotated[
        int | None, typer.Option(help="revoke only this token (see `ouie user tokens`)")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """End every session and revoke every API token of a user, or revoke one token."""
    from ouie.core.timebase import utc_now
    from ouie.hub import audit, auth
    from ouie.hub.db import ApiToken

    hub = _prepared_hub(config)
    try:
        with hub.sessions() as session, session.begin():
            user = auth.find_user(session, username)
            if user is None:
                typer.echo(f"error: no user {username!r}", err=True)
                raise typer.Exit(2)
            if token_id is None:
                ended = auth.end_credentials(session, user.id, utc_now())
                detail = {"sessions": ended.sessions, "tokens": ended.tokens}
                action = "user.credentials_ended"
                message = f"{ended.sessions} session(s) ended, {ended.tokens} token(s) revoked"
            else:
                row = session.get(ApiToken, token_id)
                if row is None or row.user_id != user.id:
                    typer.echo(f"error: {username} has no token {token_id}", err=True)
                    raise typer.Exit(2)
                auth.revoke_api_token(session, row, utc_now())
                detail = {"token": row.id, "name": row.name}
                action, message = "auth.token_revoked", f"token {row.id} ({row.name}) revoked"
            audit.record(session, audit.AuditEvent("cli", action, "user", username, detail))
    finally:
        hub.close()
    typer.echo(message)


@audit_app.command("verify")
def audit_verify(
    config: ConfigOption = None,
    anchors: Annotated[
        Path | None,
        typer.Option(
            help="signed heads recorded earlier (JSON lines, or saved "
            "/api/v1/public/audit-anchor documents): detects a rewritten log"
        ),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            help="the anchor public key (PEM, or the base64 the public page shows); "
            "default: the hub's own key (audit.anchor_key)"
        ),
    ] = None,
) -> None:
    """Recompute the hash chain; exit 1 if any entry was edited, deleted or reordered. With
    ``--anchors``, also check that every anchored head is still in the chain: a log deleted
    and re-hashed with a valid chain (which the chain alone cannot show) fails."""
    from ouie.hub import anchor

    hub = _prepared_hub(config)
    try:
        result = hub.audit_verify()
        problems = list(result.problems)
        checked = None
        if anchors is not None:
            try:
                recorded = anchor.read_anchors(anchors)
                trusted = [anchor.load_public_key(p.read_text("utf-8")) for p in public_key or []]
            except (OSError, ValueError) as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from exc
            if not trusted and hub.anchor_key is not None:
                trusted = [hub.anchor_key.public]
            if not trusted:
                typer.echo(
                    "error: no key to check the anchors with: give --public-key or set "
                    "audit.anchor_key",
                    err=True,
                )
                raise typer.Exit(2)
            with hub.sessions() as session:
                checked = anchor.check_anchors(session, recorded, trusted)
            problems += checked.problems
    finally:
        hub.close()
    anchored = f", {checked.anchors} anchor(s) matched" if checked is not None else ""
    if not problems:
        typer.echo(f"audit log intact: {result.entries} entries{anchored}")
        return
    typer.echo(f"audit log BROKEN ({result.entries} entries read):", err=True)
    for problem in problems:
        typer.echo(f"  {problem}", err=True)
    raise typer.Exit(1)


@audit_app.command("keygen")
def audit_keygen(
    out: Annotated[Path, typer.Option(help="private key file to create (PEM, mode 0600)")],
) -> None:
    """Create the Ed25519 key the hub signs its audit head with (``audit.anchor_key``).

    Keep it outside the database and its backups; the public half goes to OUT.pub."""
    from ouie.hub.anchor import AnchorKey

    try:
        key = AnchorKey.generate(out)
    except FileExistsError as exc:
        typer.echo(f"error: {out} exists (never overwritten)", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"anchor key written to {out} (public key: {out}.pub)")
    typer.echo(f"key id: {key.key_id}")
    typer.echo(f"public key: {key.public_b64}")


@audit_app.command("anchor")
def audit_anchor(config: ConfigOption = None) -> None:
    """Sign the audit head now (the hub also does so every audit.anchor_interval_s)."""
    hub = _prepared_hub(config)
    try:
        if hub.anchor_key is None:
            typer.echo("error: audit.anchor_key is not set", err=True)
            raise typer.Exit(2)
        signed = hub.anchor_once()
    finally:
        hub.close()
    if signed is None:
        typer.echo("audit head already anchored (or the log is empty)")
    else:
        typer.echo(signed.model_dump_json())


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
    identity_cli.register(app, sensor_app)  # ouie pki, ouie broker, ouie sensor identity
    bench.command("hub")(bench_hub)
