"""Rule ``mqtt-trust-missing``: a production config without TLS, client certificates, the
broker's ACL or signed messages is refused, loopback included (issue 18, finding 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ouie.compliance.check import ComplianceError, check_files, startup_check
from ouie.compliance.findings import errors
from ouie.config.hub import HubSettings
from ouie.hub.broker import MosquittoPlan, render_acl, render_config

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = REPO / "examples" / "production"


@pytest.fixture(autouse=True)
def _no_ouie_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("OUIE_NODE__", "OUIE_HUB__")):
            monkeypatch.delenv(name)


def _hub(tmp_path: Path, **changes: object) -> Path:
    """The production hub, with ``changes`` applied by dotted key (None deletes the key)."""
    data = yaml.safe_load((PRODUCTION / "hub.yaml").read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    broker = data["mqtt"].get("broker_config")
    if broker == "mosquitto/ouie.conf":  # keep the shipped broker config beside the copy
        data["mqtt"]["broker_config"] = str(PRODUCTION / "mosquitto" / "ouie.conf")
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _trust(found: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return sorted((f.where, f.severity) for f in found if f.rule == "mqtt-trust-missing")


def test_the_production_pair_passes() -> None:
    found = check_files(sorted(PRODUCTION.glob("*.yaml")))
    assert found == []


def test_loopback_is_no_exemption(tmp_path: Path) -> None:
    hub = _hub(tmp_path, mqtt__url="mqtt://127.0.0.1:1883", mqtt__tls=None)
    assert _trust(check_files([hub])) == [("mqtt.tls", "error"), ("mqtt.url", "error")]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"ingest__require_signatures": False}, "ingest.require_signatures"),
        ({"identity__pki_dir": None}, "identity"),
        ({"mqtt__broker_config": None}, "mqtt.broker_config"),
    ],
)
def test_each_missing_piece_is_an_error(tmp_path: Path, change: dict, where: str) -> None:  # type: ignore[type-arg]
    assert _trust(check_files([_hub(tmp_path, **change)])) == [(where, "error")]


def test_the_broker_config_is_read_back(tmp_path: Path) -> None:
    pki = Path("/etc/ouie/pki")
    plan = MosquittoPlan(
        ca_file=pki / "ca.crt",
        cert_file=pki / "server.crt",
        key_file=pki / "server.key",
        acl_file=tmp_path / "ouie.acl",
        data_dir=tmp_path,
        hub_identities=("ouie-hub",),
    )
    conf = tmp_path / "ouie.conf"
    (tmp_path / "ouie.acl").write_text(render_acl(("ouie-hub",)))
    conf.write_text(render_config(plan).replace("allow_anonymous false", "allow_anonymous true"))
    found = check_files([_hub(tmp_path, mqtt__broker_config=str(conf))])
    assert [f.message for f in errors(found)] == [
        f"broker config {conf}: allow_anonymous is not false"
    ]
    # a named file that is not where its folder is: probably a wrong name
    missing = tmp_path / "elsewhere.conf"
    assert _trust(check_files([_hub(tmp_path, mqtt__broker_config=str(missing))])) == [
        ("mqtt.broker_config", "warning")
    ]


def test_a_node_of_a_production_hub_needs_its_identity(tmp_path: Path) -> None:
    node = yaml.safe_load((PRODUCTION / "node.yaml").read_text(encoding="utf-8"))
    node.pop("identity")
    node["publish"]["mqtt"].pop("tls")
    node["publish"]["mqtt"]["username"] = "node-pe-01"
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(node), encoding="utf-8")
    with_hub = check_files([_hub(tmp_path), path])
    assert [(f.rule, f.where) for f in errors(with_hub)] == [("mqtt-trust-missing", "publish.mqtt")]
    assert "identity.hub_public_key" in errors(with_hub)[0].message
    # alone (no production hub in sight) it is only the usual password warning
    assert errors(check_files([path])) == []


def test_a_production_hub_refuses_to_start_without_signatures() -> None:
    data = yaml.safe_load((PRODUCTION / "hub.yaml").read_text(encoding="utf-8"))
    data["mqtt"]["broker_config"] = str(PRODUCTION / "mosquitto" / "ouie.conf")
    data["ingest"]["require_signatures"] = False
    with pytest.raises(ComplianceError, match="require_signatures"):
        startup_check(HubSettings.model_validate(data))
