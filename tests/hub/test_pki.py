"""The site CA, the identities it issues, and the broker config (``ouie pki``, ``ouie sensor
add``, ``ouie broker config``); the broker's behaviour is in
tests/integration/test_sensor_trust.py."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select
from typer.testing import CliRunner

from ouie.cli import app
from ouie.config.security import HubIdentitySettings
from ouie.hub.broker import (
    MosquittoPlan,
    broker_config_problems,
    durable_persistence,
    render_acl,
    render_config,
)
from ouie.hub.db import AuditEntry, Sensor, make_engine, session_factory
from ouie.hub.pki import PkiError, SitePki, config_signing_key, sensor_common_name
from ouie.transport.signing import SigningKey, VerifyKey

REPO = Path(__file__).resolve().parents[2]


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_issued_certificates_chain_to_the_site_ca(tmp_path: Path) -> None:
    pki = SitePki(tmp_path / "pki")
    pki.init(broker_hosts=("broker.example.net", "10.0.0.5"))
    ca = _cert(pki.ca_cert)
    identity = pki.issue_sensor("main-street", "corner-7")
    leaf = _cert(identity.certificate.cert_file)
    leaf.verify_directly_issued_by(ca)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        sensor_common_name("main-street", "corner-7")
    )
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    server = _cert(pki.broker_cert)
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["broker.example.net"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    # every private key is the owner's only; the sensor's folder holds all a node needs
    for key in (
        pki.ca_key,
        pki.hub_signing_key,
        pki.broker_key,
        identity.certificate.key_file,
        identity.signing_key_file,
    ):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert sorted(p.name for p in identity.folder.iterdir()) == [
        "ca.crt",
        "client.crt",
        "client.key",
        "hub-signing.pub",
        "signing.key",
        "signing.pub",
    ]
    assert VerifyKey.load(identity.folder / "signing.pub") == identity.public_key
    assert pki.hub_names() == ["ouie-hub"]


def test_the_ca_is_never_replaced_and_names_are_checked(tmp_path: Path) -> None:
    pki = SitePki(tmp_path)
    with pytest.raises(PkiError, match="ouie pki init"):
        pki.issue_sensor("s", "n")
    pki.init()
    with pytest.raises(PkiError, match="refusing to replace"):
        pki.init()
    with pytest.raises(PkiError):
        pki.issue_hub("ouie/hub")


def test_the_hub_signs_configs_with_its_pki_key(tmp_path: Path) -> None:
    assert config_signing_key(HubIdentitySettings()) is None
    pki = SitePki(tmp_path)
    pki.init()
    key = config_signing_key(HubIdentitySettings(pki_dir=tmp_path))
    assert key is not None and key.public == VerifyKey.load(pki.hub_signing_pub)
    other = tmp_path / "other.key"
    SigningKey.generate().save(other)
    explicit = config_signing_key(HubIdentitySettings(pki_dir=tmp_path, signing_key=other))
    assert explicit is not None and explicit.public != key.public
    with pytest.raises(PkiError, match="cannot be read"):
        config_signing_key(HubIdentitySettings(signing_key=tmp_path / "missing.key"))


def _plan(tmp_path: Path) -> MosquittoPlan:
    return MosquittoPlan(
        ca_file=tmp_path / "ca.crt",
        cert_file=tmp_path / "server.crt",
        key_file=tmp_path / "server.key",
        acl_file=tmp_path / "ouie.acl",
        data_dir=tmp_path / "data",
        hub_identities=("ouie-hub", "ouie-hub-2"),
    )


def test_the_generated_broker_config_passes_its_own_check(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    text, acl = render_config(plan), render_acl(plan.hub_identities)
    assert broker_config_problems(text, acl) == []
    assert all(line in text.splitlines() for line in durable_persistence(plan.data_dir))
    assert "user ouie-hub-2" in acl.splitlines()
    assert "pattern write ouie/v1/%u/events" in acl.splitlines()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t: t.replace("allow_anonymous false", "allow_anonymous true"), "allow_anonymous"),
        (
            lambda t: t.replace("require_certificate true", "require_certificate false"),
            "does not require a client certificate",
        ),
        (lambda t: t.replace("use_identity_as_username true", ""), "user name"),
        (
            lambda t: "\n".join(x for x in t.splitlines() if not x.startswith("acl_file")),
            "no acl_file",
        ),
        (lambda t: t + "\nlistener 1883 127.0.0.1\n", "listener 1883 127.0.0.1 is not TLS"),
        (lambda t: "port 1883\n" + t, "port 1883 is not TLS"),
    ],
)
def test_the_check_finds_what_a_hand_edited_config_lost(
    tmp_path: Path, change: object, problem: str
) -> None:
    plan = _plan(tmp_path)
    assert callable(change)
    problems = broker_config_problems(change(render_config(plan)), render_acl(("ouie-hub",)))
    assert any(problem in p for p in problems), problems


def test_the_check_finds_an_acl_open_to_everyone() -> None:
    acl = render_acl(("ouie-hub",)) + "\npattern write ouie/v1/#\n"
    problems = broker_config_problems(render_config(_plan(Path("/x"))), acl)
    assert problems == ["the ACL lets every client write ouie/v1/#"]
    assert broker_config_problems(render_config(_plan(Path("/x"))), "user ouie-hub\n")[
        0
    ].startswith("the ACL lacks the per-sensor rules")


def test_the_shipped_production_broker_config_is_the_generators() -> None:
    folder = REPO / "examples" / "production" / "mosquitto"
    pki = Path("/etc/ouie/pki")
    plan = MosquittoPlan(
        ca_file=pki / "ca.crt",
        cert_file=pki / "broker/server.crt",
        key_file=pki / "broker/server.key",
        acl_file=Path("/etc/mosquitto/conf.d/ouie.acl"),
        data_dir=Path("/var/lib/mosquitto"),
        hub_identities=("ouie-hub",),
    )
    assert (folder / "ouie.conf").read_text(encoding="utf-8") == render_config(plan)
    assert (folder / "ouie.acl").read_text(encoding="utf-8") == render_acl(plan.hub_identities)


def test_the_commands_issue_identities_and_write_the_broker_config(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    config = tmp_path / "hub.yaml"
    config.write_text(
        yaml.safe_dump({"database": {"url": url}, "identity": {"pki_dir": str(tmp_path / "pki")}})
    )
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, [*args, "--config", str(config)])
        assert result.exit_code == 0, result.output
        return result.output

    # a hub without a CA cannot issue a sensor identity yet
    refused = runner.invoke(
        app, ["sensor", "add", "s", "n1", "--lat=45", "--lon=4", "--config", str(config)]
    )
    assert refused.exit_code == 2 and "ouie pki init" in refused.output
    assert "site CA created" in run("pki", "init", "--broker-host", "127.0.0.1")
    assert "hub identity ouie-hub-2" in run("pki", "hub", "ouie-hub-2")
    added = run("sensor", "add", "s", "n1", "--lat=45", "--lon=4")
    assert "ingest token:" in added and "hub_public_key:" in added
    out = tmp_path / "mosquitto" / "ouie.conf"
    run("broker", "config", "--out", str(out), "--data-dir", str(tmp_path / "data"))
    assert broker_config_problems(out.read_text(), out.with_suffix(".acl").read_text()) == []
    assert "user ouie-hub-2" in out.with_suffix(".acl").read_text()

    engine = make_engine(url)
    with session_factory(engine)() as session:
        first = session.scalars(select(Sensor)).one()
        first_key = first.signing_key
        assert first_key is not None and first.cert_fingerprint is not None
    # registering it twice touches neither its files nor its key
    identity = tmp_path / "pki" / "sensors" / "s" / "n1" / "signing.key"
    before = identity.read_bytes()
    again = runner.invoke(
        app, ["sensor", "add", "s", "n1", "--lat=45", "--lon=4", "--config", str(config)]
    )
    assert again.exit_code == 2 and identity.read_bytes() == before
    # a new identity: new key, sequence marks cleared, audited
    assert "new identity issued" in run("sensor", "identity", "s", "n1")
    with session_factory(engine)() as session:
        sensor = session.scalars(select(Sensor)).one()
        assert sensor.signing_key not in {None, first_key}
        assert sensor.last_sequence is None
        actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))
    assert actions[-2:] == ["sensor.added", "sensor.identity_issued"]
    engine.dispose()


def test_a_client_certificate_needs_mqtts_and_its_files(tmp_path: Path) -> None:
    """Set for a plain URL it would send everything in clear text while the operator
    believes otherwise; a missing file would only show as endless reconnects."""
    from ouie.config.hub import MqttIngestSettings
    from ouie.config.node import MqttSettings
    from ouie.config.security import TlsSettings
    from ouie.hub.mqtt import MqttIngest
    from ouie.transport.mqtt import MqttPublisher
    from ouie.transport.spool import Spool

    pki = SitePki(tmp_path / "pki")
    pki.init()
    hub = pki.hub_dir("ouie-hub")
    tls = TlsSettings(
        ca_file=pki.ca_cert, cert_file=hub / "client.crt", key_file=hub / "client.key"
    )

    async def submit(_: object) -> None:
        return None

    with pytest.raises(ValueError, match="not mqtts"):
        MqttIngest(MqttIngestSettings(url="mqtt://127.0.0.1:1883", tls=tls), submit)
    missing = tls.model_copy(update={"key_file": tmp_path / "nope.key"})
    with pytest.raises(ValueError, match="not found"):
        MqttIngest(MqttIngestSettings(url="mqtts://127.0.0.1:8883", tls=missing), submit)
    MqttIngest(MqttIngestSettings(url="mqtts://127.0.0.1:8883", tls=tls), submit)
    spool = Spool(tmp_path / "spool.sqlite3")
    with pytest.raises(ValueError, match="not mqtts"):
        MqttPublisher(MqttSettings(url="mqtt://127.0.0.1:1883", tls=tls), spool, "s", "n")
    spool.close()
