"""``ouie pki init|hub``, ``ouie broker config`` and ``ouie sensor identity``: the site CA,
the broker's config and each sensor's certificate and signing key (docs/security.md).

``ouie sensor add`` (``ouie.hub.cli``) calls ``issue_for_new_sensor`` here, so a sensor
registered on a hub with a PKI folder gets its identity in the same step.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ouie.config.hub import HubSettings
    from ouie.hub.pki import SensorIdentity, SitePki

pki_app = typer.Typer(name="pki", help="The site's certificate authority.", no_args_is_help=True)
broker_app = typer.Typer(
    name="broker", help="The MQTT broker's configuration.", no_args_is_help=True
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="hub YAML (identity.pki_dir, mqtt.broker_config, …)"),
]
PkiDirOption = Annotated[
    Path | None, typer.Option("--pki-dir", help="the PKI folder (default: identity.pki_dir)")
]


def _settings(config: Path | None) -> HubSettings:
    from ouie.config.hub import load_hub_settings
    from ouie.config.loader import ConfigError

    try:
        return load_hub_settings(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _pki(settings: HubSettings, override: Path | None) -> SitePki | None:
    from ouie.hub.pki import SitePki

    folder = override or settings.identity.pki_dir
    return None if folder is None else SitePki(folder)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@pki_app.command("init")
def pki_init(
    config: ConfigOption = None,
    pki_dir: PkiDirOption = None,
    broker_host: Annotated[
        list[str] | None,
        typer.Option(help="name or address the broker answers on (repeat); default: localhost"),
    ] = None,
    hub_name: Annotated[str, typer.Option(help="the hub's identity (certificate CN)")] = "ouie-hub",
    organisation: Annotated[str, typer.Option(help="organisation named in the CA")] = "ouie site",
) -> None:
    """Create the site CA, the hub's certificate and config-signing key and the broker's
    server certificate. Never replaces an existing CA."""
    from ouie.hub.pki import DEFAULT_BROKER_HOSTS, PkiError

    pki = _pki(_settings(config), pki_dir)
    if pki is None:
        raise _fail("no PKI folder: give --pki-dir or set identity.pki_dir")
    hosts = tuple(broker_host) if broker_host else DEFAULT_BROKER_HOSTS
    try:
        pki.init(organisation=organisation, broker_hosts=hosts, hub_name=hub_name)
    except PkiError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"site CA created in {pki.root}")
    typer.echo(f"broker certificate for {', '.join(hosts)}: {pki.broker_cert}")
    hub = pki.hub_dir(hub_name)
    typer.echo(
        "hub settings:\n"
        "  mqtt:\n"
        "    url: mqtts://<broker>:8883\n"
        f"    tls: {{ca_file: {pki.ca_cert}, cert_file: {hub / 'client.crt'}, "
        f"key_file: {hub / 'client.key'}}}\n"
        f"  identity: {{pki_dir: {pki.root}}}\n"
        "  ingest: {require_signatures: true}"
    )


@pki_app.command("hub")
def pki_hub(
    name: Annotated[str, typer.Argument(help="identity of another hub worker (certificate CN)")],
    config: ConfigOption = None,
    pki_dir: PkiDirOption = None,
) -> None:
    """Issue a client certificate for another hub worker (each needs its own), then run
    ``ouie broker config`` again so the ACL names it."""
    from ouie.hub.pki import PkiError

    pki = _pki(_settings(config), pki_dir)
    if pki is None:
        raise _fail("no PKI folder: give --pki-dir or set identity.pki_dir")
    try:
        issued = pki.issue_hub(name)
    except PkiError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"hub identity {name}: {issued.cert_file}, {issued.key_file}")


@broker_app.command("config")
def broker_config(
    out: Annotated[Path, typer.Option(help="Mosquitto config file to write")],
    config: ConfigOption = None,
    pki_dir: PkiDirOption = None,
    acl: Annotated[Path | None, typer.Option(help="ACL file (default: beside OUT)")] = None,
    data_dir: Annotated[Path, typer.Option(help="Mosquitto's persistence folder")] = Path(
        "/var/lib/mosquitto"
    ),
    listen: Annotated[str, typer.Option(help="listen address")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="TLS port")] = 8883,
    user: Annotated[str, typer.Option(help="user Mosquitto runs as")] = "mosquitto",
    log_file: Annotated[Path | None, typer.Option(help="Mosquitto log file")] = None,
) -> None:
    """Write the broker's config and ACL: TLS only, client certificates required, the CN as
    user name and client id, per-sensor topics, persistence on every change. Name OUT in
    the hub's ``mqtt.broker_config`` so ``ouie check`` reads it back."""
    from ouie.hub.broker import MosquittoPlan, broker_config_problems, write_broker_config

    pki = _pki(_settings(config), pki_dir)
    if pki is None or not pki.exists():
        raise _fail("no site CA: run `ouie pki init` (and give --pki-dir or identity.pki_dir)")
    hubs = tuple(pki.hub_names())
    if not hubs:
        raise _fail(f"no hub identity in {pki.root}/hubs: run `ouie pki hub NAME`")
    plan = MosquittoPlan(
        ca_file=pki.ca_cert,
        cert_file=pki.broker_cert,
        key_file=pki.broker_key,
        acl_file=acl or out.with_suffix(".acl"),
        data_dir=data_dir,
        hub_identities=hubs,
        listen_host=listen,
        port=port,
        run_as_user=user,
        log_file=log_file,
    )
    write_broker_config(plan, out)
    problems = broker_config_problems(out.read_text("utf-8"), plan.acl_file.read_text("utf-8"))
    if problems:  # the generator and the check describe one policy: a bug if they differ
        raise _fail("; ".join(problems))
    typer.echo(f"broker config written to {out} (ACL {plan.acl_file}; hubs: {', '.join(hubs)})")
    typer.echo(f"Mosquitto must be able to read {pki.broker_key} (run it as {user})")


def issue_for_new_sensor(
    settings: HubSettings, pki_dir: Path | None, site: str, sensor_id: str
) -> SensorIdentity | None:
    """The identity of a sensor about to be registered; None when the hub has no PKI."""
    from ouie.hub.pki import PkiError

    pki = _pki(settings, pki_dir)
    if pki is None:
        return None
    try:
        return pki.issue_sensor(site, sensor_id)
    except PkiError as exc:
        raise _fail(str(exc)) from exc


def print_identity(identity: SensorIdentity) -> None:
    """Where the files are, and the node settings that use them."""
    cert = identity.certificate
    folder = identity.folder
    typer.echo(f"identity in {folder} (copy the folder to the sensor; keys are mode 0600)")
    typer.echo(f"certificate sha256 {cert.fingerprint}, valid until {cert.not_after:%Y-%m-%d}")
    typer.echo(
        "node settings:\n"
        "  publish:\n"
        "    kind: mqtt\n"
        "    mqtt:\n"
        "      url: mqtts://<broker>:8883\n"
        f"      tls: {{ca_file: {identity.ca_file}, cert_file: {cert.cert_file}, "
        f"key_file: {cert.key_file}}}\n"
        "  identity:\n"
        f"    signing_key: {identity.signing_key_file}\n"
        f"    hub_public_key: {identity.hub_public_key_file}"
    )


def sensor_identity(
    site: Annotated[str, typer.Argument(help="site id")],
    sensor_id: Annotated[str, typer.Argument(help="sensor id")],
    config: ConfigOption = None,
    pki_dir: PkiDirOption = None,
) -> None:
    """Issue a new certificate and signing key for a registered sensor (a replaced node,
    a key that leaked, a sensor registered before it had one). Messages signed with the
    old key are refused from now on."""
    from ouie.core.timebase import utc_now
    from ouie.hub import sensors
    from ouie.hub.pki import PkiError
    from ouie.hub.service import Hub

    settings = _settings(config)
    hub = Hub(settings)
    try:
        try:
            hub.prepare()
        except PkiError as exc:
            raise _fail(str(exc)) from exc
        with hub.sessions() as session, session.begin():
            sensor = sensors.find(session, site, sensor_id)
            if sensor is None:
                raise _fail(f"no sensor {site}/{sensor_id}")
            identity = issue_for_new_sensor(settings, pki_dir, site, sensor_id)
            if identity is None:
                raise _fail("no PKI folder: give --pki-dir or set identity.pki_dir")
            sensors.set_identity(
                session,
                sensor,
                signing_key=identity.public_key.text,
                cert_fingerprint=identity.certificate.fingerprint,
                actor="cli",
                now=utc_now(),
            )
    finally:
        hub.close()
    typer.echo(f"sensor {site}/{sensor_id}: new identity issued")
    print_identity(identity)


def register(app: typer.Typer, sensor_app: typer.Typer) -> None:
    app.add_typer(pki_app)
    app.add_typer(broker_app)
    sensor_app.command("identity")(sensor_identity)
