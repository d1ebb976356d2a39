"""``ouie dpia``: documents generated from the configuration and measured figures."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ouie.cli import app
from ouie.compliance.dpia import EVIDENCE, DpiaError, generate, message_inventory, zone_metrics
from ouie.compliance.leakage import PrivacyReport, SetStats, write_report
from ouie.compliance.pdf import markdown_to_pdf, parse
from ouie.config.compliance import Zone
from ouie.core.messages import ALL_MESSAGE_MODELS

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = sorted((REPO / "examples" / "production").glob("*.yaml"))


def _report(**changes: object) -> PrivacyReport:
    values: dict[str, object] = dict(
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        backend="yamnet",
        model_id="yamnet-tflite@0a266465",
        data_dir="../shared/data/dev",
        espeak=True,
        speech_settings={
            "speech_probability": 0.5,
            "speech_fraction": 0.3,
            "impulsive_threshold": 0.9,
        },
        events_on_speech=0,
        speech_seconds=2500.4,
        speech_recordings=278,
        speech_candidates=3,
        speech_suppressions=3,
        suppression_rate=1.0,
        bytes_per_hour=57674.5,
        largest_message_bytes=494,
        largest_message_kind="status",
        audio_files_written=0,
        sets={"espeak": SetStats(recordings=60, seconds=257.5)},
        messages=7,
        event_messages=1,
        status_messages=6,
        bytes_total=3300,
        status_message_mean_bytes=478.0,
        status_interval_s=30.0,
        audio_hours=0.8,
        messages_with_arrays=0,
        audio_files=[],
        watched_roots=["/tmp"],
        watch_method="fanotify+scan",
        files_checked=12,
        wall_s=70.0,
        passed=True,
        failures=[],
    )
    values.update(changes)
    return PrivacyReport.model_validate(values)


@pytest.fixture
def eval_json(tmp_path: Path) -> Path:
    path = tmp_path / "privacy.json"
    write_report(_report(), path)
    return path


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUIE_NODE__PUBLISH__MQTT__PASSWORD", "vJ3#qT9!mZ2$wK7pL4")


def test_inventory_lists_every_message_field() -> None:
    rows = message_inventory()
    listed = {(r.message, r.field) for r in rows}
    expected = {(m.__name__, f) for m in ALL_MESSAGE_MODELS for f in m.model_fields}
    assert listed == expected
    for row in rows:
        assert "array" not in row.type and row.category


def test_every_evidence_test_exists() -> None:
    for key, evidence in EVIDENCE.items():
        file, _, name = evidence.test.partition("::")
        path = REPO / file
        assert path.is_file(), f"{key}: {file} is missing"
        assert re.search(rf"^def {re.escape(name)}\(", path.read_text(), re.M), (
            f"{key}: {evidence.test} is missing"
        )


def test_zone_metrics_of_a_known_square() -> None:
    # 0.001° of latitude ≈ 111.2 m; of longitude at 45° ≈ 78.6 m
    zone = Zone(name="sq", polygon=[(45.0, 4.0), (45.001, 4.0), (45.001, 4.001), (45.0, 4.001)])
    metrics = zone_metrics(zone)
    assert metrics.area_m2 == pytest.approx(111.2 * 78.6, rel=0.01)
    assert Zone(name="z", polygon=zone.polygon, hours=["20:00-06:00"]).hours_per_day() == 10.0
    assert (
        Zone(name="z", polygon=zone.polygon, hours=["08:00-12:00", "10:00-14:00"]).hours_per_day()
        == 6.0
    )
    assert zone.hours_per_day() == 24.0


def test_dpia_generates_every_document(tmp_path: Path, eval_json: Path) -> None:
    out = tmp_path / "dpia"
    written = generate(PRODUCTION, eval_json, out)
    names = {p.name for p in written}
    assert names == {
        "dpia.md",
        "dpia.pdf",
        "dpia-pia.json",
        "art30-register.md",
        "notice-fr.md",
        "notice-en.md",
        "sensor-map.png",
    }
    dpia = (out / "dpia.md").read_text(encoding="utf-8")
    # figures come from the evaluation JSON, settings from the config
    assert "| events emitted on speech | **0** |" in dpia
    assert "57.7 kB" in dpia and "494 bytes" in dpia
    assert "278 speech recordings" in dpia
    assert "Commune d'Exemple-sur-Loire" in dpia and "dpo@exemple-sur-loire.fr" in dpia
    assert "13.91 ha" in dpia and "20:00-06:00" in dpia
    assert "| legal maximum | 30 |" in dpia
    assert "passes this configuration" in dpia
    for risk in (
        "Capture of conversations",
        "Function creep",
        "Chilling effect",
        "Drone and camera overreach",
        "Operator curiosity",
    ):
        assert risk in dpia
    for evidence in EVIDENCE.values():
        assert evidence.test in dpia
    assert "onset" in dpia and "speech_present" in dpia  # the inventory
    pdf = (out / "dpia.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 4
    png = (out / "sensor-map.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_notices_and_register(tmp_path: Path, eval_json: Path) -> None:
    generate(PRODUCTION, eval_json, tmp_path, pdf=False)
    fr = (tmp_path / "notice-fr.md").read_text(encoding="utf-8")
    en = (tmp_path / "notice-en.md").read_text(encoding="utf-8")
    assert "Aucun son n'est enregistré" in fr and "30 jours" in fr
    assert "No sound is recorded" in en and "30 days" in en
    for text in (fr, en):
        assert "dpo@exemple-sur-loire.fr" in text and "CNIL" in text
        assert "Place de l'Exemple" in text and "8 " in text
    register = (tmp_path / "art30-register.md").read_text(encoding="utf-8")
    for point in (
        "(a) controller",
        "(b) purposes",
        "(c) data subjects",
        "(d) recipients",
        "(e) transfers",
        "(f) retention",
        "(g) security measures",
    ):
        assert point in register
    assert "6(1)(e)" in register


def test_pia_json_follows_the_cnil_tool_structure(tmp_path: Path, eval_json: Path) -> None:
    generate(PRODUCTION, eval_json, tmp_path, pdf=False)
    pia = json.loads((tmp_path / "dpia-pia.json").read_text(encoding="utf-8"))
    assert set(pia) >= {"pia", "answers", "measures", "evaluations", "comments"}
    refs = {a["reference_to"] for a in pia["answers"]}
    expected = {111, 112, 113, 121, 122, 123, *range(211, 216), *range(221, 228)}
    expected |= {s + i for s in (320, 330, 340) for i in range(1, 7)}
    assert refs == expected
    for answer in pia["answers"]:
        assert set(answer["data"]) == {"text", "gauge", "list"}
    gauges = [
        a["data"]["gauge"]
        for a in pia["answers"]
        if a["reference_to"] % 10 in (5, 6) and a["reference_to"] > 300
    ]
    assert all(g in (1, 2, 3, 4) for g in gauges)
    assert pia["ouie"]["figures"]["audio_files_written"] == 0


def test_a_failed_evaluation_is_said_plainly(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    write_report(
        _report(
            events_on_speech=2,
            passed=False,
            failures=["2 event(s) emitted on speech-only recordings"],
        ),
        path,
    )
    generate(PRODUCTION, path, tmp_path / "out", pdf=False)
    dpia = (tmp_path / "out" / "dpia.md").read_text(encoding="utf-8")
    assert "The evaluation failed" in dpia and "| events emitted on speech | **2** |" in dpia


def test_findings_appear_in_the_dpia(tmp_path: Path, eval_json: Path) -> None:
    bad = REPO / "examples" / "bad" / "retention-excessive.yaml"
    generate([bad], eval_json, tmp_path, pdf=False)
    dpia = (tmp_path / "dpia.md").read_text(encoding="utf-8")
    assert "reports 1 error(s)" in dpia and "[retention-excessive]" in dpia


def test_dpia_needs_a_hub_config_and_an_evaluation(tmp_path: Path, eval_json: Path) -> None:
    node = REPO / "examples" / "production" / "node.yaml"
    with pytest.raises(DpiaError, match="hub"):
        generate([node], eval_json, tmp_path)
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    with pytest.raises(DpiaError, match="ouie eval privacy"):
        generate(PRODUCTION, junk, tmp_path)


def test_cli(tmp_path: Path, eval_json: Path) -> None:
    args = ["dpia", "--eval-json", str(eval_json), "--out", str(tmp_path / "o"), "--no-pdf"]
    for path in PRODUCTION:
        args += ["--config", str(path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "notice-fr.md" in result.output
    missing = CliRunner().invoke(
        app,
        [
            "dpia",
            "--config",
            str(PRODUCTION[1]),
            "--eval-json",
            str(eval_json),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert missing.exit_code == 2


def test_pdf_renderer_handles_the_markdown_subset(tmp_path: Path) -> None:
    markdown = "\n".join(
        [
            "# Title with accents: données à caractère personnel",
            "",
            "A paragraph with **bold** and `code` that is long enough to wrap " * 4,
            "",
            "- a bullet",
            "> a note",
            "",
            "| a | b |",
            "|---|---|",
            *[f"| row {i} | {'text ' * 12} |" for i in range(80)],  # spans pages
            "",
            "![missing](nothing.png)",
        ]
    )
    kinds = [b.kind for b in parse(markdown)]
    assert kinds == ["h1", "p", "bullet", "quote", "table", "image"]
    pages = markdown_to_pdf(markdown, tmp_path / "t.pdf", "Test")
    assert pages >= 2
    assert (tmp_path / "t.pdf").read_bytes().startswith(b"%PDF")


def test_every_report_and_compliance_field_is_documented() -> None:
    """docs/privacy.md names every key of the eval JSON and of ``compliance:``."""
    from ouie.config.compliance import ComplianceSettings

    text = (REPO / "docs" / "privacy.md").read_text(encoding="utf-8")
    eval_section = text.split("## `ouie eval privacy`", 1)[1].split("\n## ", 1)[0]
    for name in PrivacyReport.model_fields:
        assert f"`{name}`" in eval_section, f"eval JSON key {name} is not in docs/privacy.md"
    compliance_section = text.split("### The `compliance:` section", 1)[1].split("\n## ", 1)[0]
    for name in ComplianceSettings.model_fields:
        assert f"`{name}`" in compliance_section, f"compliance.{name} is not documented"
