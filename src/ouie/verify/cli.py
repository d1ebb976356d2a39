"""Commands of the verification role: ``ouie verify …`` and ``ouie bench verify``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

verify_app = typer.Typer(
    name="verify",
    help="Alarm verification: camera cueing, drone dispatch, outbound alerts.",
    no_args_is_help=True,
)


@verify_app.command()
def keygen() -> None:
    """Print a new secret key (put it in OUIE_SECRET_KEY or a mode-600 key file)."""
    from ouie.verify.credentials import SecretBox

    typer.echo(SecretBox.generate_key())


@verify_app.command()
def encrypt(
    key_file: Annotated[
        Path | None, typer.Option(help="key file (default: $OUIE_SECRET_KEY)")
    ] = None,
) -> None:
    """Encrypt a secret read from standard input; prints the token for the config file."""
    from ouie.verify.credentials import SecretBox, SecretKeyError

    try:
        box = SecretBox.load(key_file)
    except SecretKeyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if sys.stdin.isatty():
        import getpass

        secret = getpass.getpass("secret: ")
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        typer.echo("error: empty secret", err=True)
        raise typer.Exit(2)
    typer.echo(box.encrypt(secret))


@verify_app.command()
def check(
    config: Annotated[Path, typer.Option("--config", "-c", help="verify settings YAML")],
) -> None:
    """Validate a verification config: cameras, docks, no-fly zones, outputs, secrets."""
    from ouie.config.loader import ConfigError
    from ouie.config.verify import load_verify_settings
    from ouie.verify.credentials import SecretKeyError
    from ouie.verify.drone import GeofenceError, load_no_fly_zones
    from ouie.verify.service import load_secrets

    try:
        settings = load_verify_settings(config)
        box = load_secrets(settings)
        for camera in settings.cameras:
            if camera.password_enc and box is not None:
                box.decrypt(camera.password_enc)
        zones = (
            load_no_fly_zones(settings.flight_rules.no_fly_geojson)
            if settings.flight_rules.no_fly_geojson
            else []
        )
    except (ConfigError, SecretKeyError, GeofenceError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"ok: {len(settings.cameras)} cameras, {len(settings.docks)} docks, "
        f"{len(zones)} no-fly zones, {len(settings.outputs)} outputs"
    )


def bench_verify(
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures here")] = None,
    cues: Annotated[int, typer.Option(min=3, help="camera cues to time")] = 20,
    missions: Annotated[int, typer.Option(min=1, help="drone missions to time")] = 5,
    webhooks: Annotated[int, typer.Option(min=1, help="webhook deliveries to time")] = 50,
) -> None:
    """Incident → camera moved, approval → mission uploaded, webhook latency (loopback peers)."""
    from rich.console import Console
    from rich.table import Table

    from ouie.verify import bench as verify_bench

    result = verify_bench.run(cues, missions, webhooks)
    table = Table("measure", "p50 ms", "max ms", "first (cold) ms", title=result.machine)
    table.add_row(
        "incident → PTZ AbsoluteMove answered",
        f"{result.camera_cue_ms_p50:.1f}",
        f"{result.camera_cue_ms_max:.1f}",
        f"{result.camera_cue_cold_ms:.1f}",
    )
    table.add_row(
        "incident → GotoPreset answered", f"{result.camera_preset_cue_ms_p50:.1f}", "", ""
    )
    table.add_row(
        f"incident → camera IDLE at target ({result.camera_move_time_s:.1f} s slew)",
        f"{result.camera_settled_ms_p50:.1f}",
        "",
        "",
    )
    table.add_row(
        f"approval → mission uploaded ({result.mission_items} items)",
        f"{result.approval_to_upload_ms_p50:.1f}",
        f"{result.approval_to_upload_ms_max:.1f}",
        f"{result.approval_to_upload_cold_ms:.1f}",
    )
    table.add_row(
        "incident → webhook received",
        f"{result.webhook_delivery_ms_p50:.1f}",
        f"{result.webhook_delivery_ms_max:.1f}",
        "",
    )
    Console().print(table)
    if json_out is not None:
        verify_bench.write_json(result, json_out)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.add_typer(verify_app)
    bench.command("verify")(bench_verify)
