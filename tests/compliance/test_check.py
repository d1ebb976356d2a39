"""``ouie check``: the production example passes, each bad example fails with its rule, and a
production hub refuses to start on any finding."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from ouie.cli import app
from ouie.compliance.check import ComplianceError, check_files, startup_check
from ouie.compliance.findings import RULES, errors
from ouie.compliance.loading import detect_role
from ouie.compliance.roles import findings_for_hub
from ouie.compliance.rules.credentials import weakness
from ouie.compliance.rules.zone import zone_findings
from ouie.config.compliance import ComplianceSettings, DeclaredSensor, Zone
from ouie.config.hub import HubSettings

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = sorted((REPO / "examples" / "production").glob("*.yaml"))
BAD = REPO / "examples" / "bad"
NODE_PASSWORD_ENV = "OUIE_NODE__PUBLISH__MQTT__PASSWORD"
STRONG = "vJ3#qT9!mZ2$wK7pL4"
#: a moment inside the examples' experiment (2027-01-04 .. 2028-06-30), so that these tests
#: do not start failing with experiment-ended when the calendar passes its end
DURING = datetime(2027, 6, 1, tzinfo=UTC)


def _bad_examples() -> list[Path]:
    return sorted(BAD.iterdir())


def _files(example: Path) -> list[Path]:
    return sorted(example.glob("*.yaml")) if example.is_dir() else [example]


def _rule(example: Path) -> str:
    return example.name.removesuffix(".yaml")


@pytest.fixture(autouse=True)
def _no_ouie_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("OUIE_NODE__", "OUIE_HUB__")):
            monkeypatch.delenv(name)


def test_production_example_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(PRODUCTION) == 2
    # The broker password comes from the service's environment, as in production.
    monkeypatch.setenv(NODE_PASSWORD_ENV, STRONG)
    assert check_files(PRODUCTION, now=DURING) == []


def test_production_example_needs_no_broker_password() -> None:
    # The sensor authenticates with its client certificate (issue 18), so no secret has to
    # come from the environment.
    assert check_files(PRODUCTION, now=DURING) == []


def test_a_broker_user_without_a_password_only_warns(tmp_path: Path) -> None:
    node = tmp_path / "node.yaml"
    node.write_text(
        "sensor_id: n1\npublish:\n  kind: mqtt\n  mqtt:\n"
        "    url: mqtts://broker.example.net:8883\n    username: node-n1\n",
        encoding="utf-8",
    )
    found = check_files([node])
    assert [(f.rule, f.severity) for f in found] == [("mqtt-insecure", "warning")]


@pytest.mark.parametrize("example", _bad_examples(), ids=lambda p: p.name)
def test_each_bad_example_fails_with_its_rule(example: Path) -> None:
    found = check_files(_files(example), now=DURING)
    assert {f.rule for f in errors(found)} == {_rule(example)}, [f.format() for f in found]
    for finding in found:
        assert finding.message and finding.source


def test_every_rule_has_a_bad_example_and_a_line_in_the_docs() -> None:
    examples = {_rule(p) for p in _bad_examples()}
    assert examples == set(RULES)
    docs = (REPO / "docs" / "privacy.md").read_text(encoding="utf-8")
    for rule in RULES:
        assert f"`{rule}`" in docs, f"docs/privacy.md does not describe rule {rule}"


def test_cli_exit_codes_and_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.setenv(NODE_PASSWORD_ENV, STRONG)
    good = runner.invoke(app, ["check", *map(str, PRODUCTION)])
    assert good.exit_code == 0, good.output
    assert "ouie check passed" in good.output
    bad = runner.invoke(app, ["check", str(BAD / "retention-excessive.yaml")])
    assert bad.exit_code == 1
    assert "[retention-excessive] retention.per_site.place-exemple" in bad.output
    assert "90 days" in bad.output
    as_json = runner.invoke(app, ["check", "--format", "json", str(BAD / "dpo-missing.yaml")])
    assert as_json.exit_code == 1
    payload = json.loads(as_json.stdout)
    assert payload["passed"] is False
    assert [f["rule"] for f in payload["findings"]] == ["dpo-missing"]


def test_strict_fails_on_warnings(tmp_path: Path) -> None:
    node = tmp_path / "node.yaml"
    node.write_text(
        "sensor_id: n1\npublish:\n  kind: mqtt\n  mqtt:\n"
        "    url: mqtts://broker.example.net:8883\n    username: node-n1\n",
        encoding="utf-8",
    )
    assert CliRunner().invoke(app, ["check", str(node)]).exit_code == 0
    result = CliRunner().invoke(app, ["check", "--strict", str(node)])
    assert result.exit_code == 1


def test_secret_values_never_appear_in_findings(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text(
        "sensor_id: n1\npublish:\n  kind: mqtt\n  mqtt:\n"
        "    url: mqtts://user:hunter2@broker.example.net:8883\n    password: Winter2026\n"
    )
    found = check_files([config])
    assert {f.rule for f in found} == {"weak-credential"}
    text = "\n".join(f.format() for f in found)
    assert "hunter2" not in text and "Winter2026" not in text


def test_a_weak_secret_from_the_environment_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NODE_PASSWORD_ENV, "password")
    found = check_files(PRODUCTION, now=DURING)
    assert [f.rule for f in errors(found)] == ["weak-credential"]


def test_role_detection(tmp_path: Path) -> None:
    assert detect_role({"sensor_id": "a", "publish": {}}) == "node"
    assert detect_role({"retention": {}, "compliance": {}}) == "hub"
    assert detect_role({"role": "hub"}) == "hub"
    assert detect_role({"nothing": 1}) is None
    forced = tmp_path / "x.yaml"
    forced.write_text("role: node\nsite: s\n")
    assert check_files([forced]) == []


def test_speech_guard_cannot_be_switched_off(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text("sensor_id: n1\nprivacy:\n  speech_guard: false\n")
    assert {f.rule for f in check_files([config])} == {"speech-guard-weakened"}


@pytest.mark.parametrize(
    ("secret", "weak"),
    [
        ("changeme", True),
        ("admin", True),
        ("Passw0rd", True),
        ("short1!", True),
        ("alllowercaseletters", True),
        ("${MQTT_PASSWORD}", True),
        ("<your password>", True),
        ("vJ3#qT9!mZ2$wK7pL4", False),
        ("correct-horse-battery-staple-42", False),
    ],
)
def test_weakness(secret: str, weak: bool) -> None:
    assert (weakness(secret) is not None) is weak


def test_user_name_inside_the_password_is_weak() -> None:
    assert weakness("node-pe-01-Secret!x9", "node-pe-01") is not None


def test_sensors_on_the_zone_edge_are_inside_and_outside_ones_are_reported() -> None:
    """The edge rule is ``ouie.core.geometry``'s (tested there); this checks the rule uses
    it on (lat, lon), a concave zone included."""
    concave = [(0.0, 0.0), (0.0, 3.0), (3.0, 3.0), (3.0, 2.0), (1.0, 2.0), (1.0, 0.0)]
    zone = Zone(name="test", polygon=concave)
    sensors = [
        DeclaredSensor(id="inside", lat=2.5, lon=2.5),
        DeclaredSensor(id="edge", lat=0.0, lon=0.5),
        DeclaredSensor(id="corner", lat=3.0, lon=3.0),
        DeclaredSensor(id="notch", lat=2.0, lon=0.5),
    ]
    found = zone_findings(zone, sensors)
    assert [(f.rule, f.where) for f in found] == [("sensor-outside-zone", "sensors.notch")]


def test_a_zone_without_an_inside_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="zero area"):
        Zone(name="flat", polygon=[(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)])


def _production_hub() -> tuple[HubSettings, ComplianceSettings]:
    import yaml

    data = yaml.safe_load((REPO / "examples/production/hub.yaml").read_text(encoding="utf-8"))
    compliance = ComplianceSettings.model_validate(data.pop("compliance"))
    return HubSettings.model_validate(data), compliance


def test_production_hub_refuses_to_start_on_findings() -> None:
    settings, compliance = _production_hub()
    assert startup_check(settings, compliance=compliance) == []
    broken = compliance.model_copy(update={"dpo": None})
    with pytest.raises(ComplianceError) as caught:
        startup_check(settings, compliance=broken)
    assert "dpo-missing" in str(caught.value)
    assert [f.rule for f in caught.value.findings] == ["dpo-missing"]
    # Outside production mode the same finding is only reported.
    trial = broken.model_copy(update={"production": False})
    assert [f.rule for f in startup_check(settings, compliance=trial)] == ["dpo-missing"]


def test_registered_sensors_are_checked_against_the_zone() -> None:
    settings, compliance = _production_hub()
    far = DeclaredSensor(id="rogue-1", lat=45.50, lon=4.40)
    near = DeclaredSensor(id="pe-09", lat=45.4400, lon=4.3880)
    found = findings_for_hub(settings, [far, near], compliance=compliance)
    assert [(f.rule, f.where) for f in found] == [("sensor-outside-zone", "sensors.rogue-1")]


def test_hub_settings_dump_is_scanned_for_audio_options() -> None:
    """A future hub field that would keep audio is caught from the live settings too."""
    settings, compliance = _production_hub()
    raw = settings.model_dump(mode="json")
    raw["ingest"]["store_audio_snippets"] = True
    found = findings_for_hub(settings, compliance=compliance, raw=raw)
    assert [(f.rule, f.where) for f in found] == [("audio-export", "ingest.store_audio_snippets")]


VERIFY_YAML = """\
docks:
  - {id: dock-1, lat: 45.44, lon: 4.386, connection: "udpout:10.0.0.50:14550"}
outputs:
  - {type: mqtt, url: "mqtt://10.1.1.1:1883"}
  - {type: vms_webhook, id: vms, url: "http://vms.local/bookmarks"}
  - {type: webhook, id: police, url: "https://police.example.net/hook"}
  - {type: mqtt, url: "mqtt://127.0.0.1:1883"}
"""


def test_verify_outputs_must_not_carry_incidents_in_clear_text(tmp_path: Path) -> None:
    pytest.importorskip("ouie.config.verify")
    standalone = tmp_path / "verify.yaml"
    standalone.write_text(VERIFY_YAML)
    found = check_files([standalone])
    assert sorted((f.rule, f.where) for f in found) == [
        ("http-insecure", "outputs[1].url"),
        ("mqtt-insecure", "outputs[0].url"),
    ]
    # the same section inside the hub's config
    hub = (REPO / "examples/production/hub.yaml").read_text(encoding="utf-8")
    inside = tmp_path / "hub.yaml"
    inside.write_text(
        hub + "verify:\n" + "".join("  " + line + "\n" for line in VERIFY_YAML.splitlines())
    )
    found = check_files([inside])
    assert sorted((f.rule, f.where) for f in found) == [
        ("http-insecure", "verify.outputs[1].url"),
        ("mqtt-insecure", "verify.outputs[0].url"),
    ]
