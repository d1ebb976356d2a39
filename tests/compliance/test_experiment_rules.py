"""The issue-20 rules: ``camera-auto-cue``, ``experiment-missing``, ``experiment-ended`` and
``public-counts-live``, on the production example changed one setting at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from ouie.compliance.check import check_files
from ouie.compliance.findings import errors
from ouie.compliance.rules.experiment import experiment_findings
from ouie.config.compliance import ComplianceSettings, Purpose

REPO = Path(__file__).resolve().parents[2]
HUB = REPO / "examples" / "production" / "hub.yaml"
#: a moment inside the production example's experiment (2027-01-04 .. 2028-06-30)
DURING = datetime(2027, 6, 1, tzinfo=UTC)


def _production() -> dict[str, Any]:
    raw = yaml.safe_load(HUB.read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def _rules(tmp_path: Path, raw: dict[str, Any], now: datetime = DURING) -> set[str]:
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return {f.rule for f in errors(check_files([path], now=now))}


def test_camera_auto_cue_needs_the_instrument(tmp_path: Path) -> None:
    raw = _production()
    assert _rules(tmp_path, raw) == set()
    raw["verify"] = {"cueing": {"auto_cue_labels": ["gunshot"]}}
    assert _rules(tmp_path, raw) == {"camera-auto-cue"}
    # outside production the hub may be tested with automatic cueing
    raw["compliance"]["production"] = False
    assert _rules(tmp_path, raw) == set()
    raw["compliance"]["production"] = True
    # the same through a verify.yaml the hub names
    verify = tmp_path / "verify.yaml"
    verify.write_text("cueing:\n  auto_cue_labels: [explosion]\n", encoding="utf-8")
    raw["verify"] = "verify.yaml"
    assert _rules(tmp_path, raw) == {"camera-auto-cue"}
    # a declared provision lets it through, and the DPIA then states it
    raw["compliance"]["legal_basis"]["audio_triggered_cameras"] = (
        "Article 4 of the (fictional) decree authorising audio-triggered video-protection"
    )
    assert _rules(tmp_path, raw) == set()
    from ouie.compliance.dpia import generate
    from ouie.compliance.leakage import write_report
    from tests.compliance.test_dpia import _report

    privacy = tmp_path / "privacy.json"
    write_report(_report(), privacy)
    generate([tmp_path / "hub.yaml"], privacy, tmp_path / "dpia", pdf=False)
    dpia = (tmp_path / "dpia" / "dpia.md").read_text(encoding="utf-8")
    assert "turned automatically towards explosion" in dpia
    assert "Article 4 of the (fictional) decree" in dpia
    notice = (tmp_path / "dpia" / "notice-fr.md").read_text(encoding="utf-8")
    assert "orientées automatiquement vers : explosion" in notice
    assert "Aucune caméra n'est orientée" not in notice


def test_experiment_missing_unless_the_instrument_is_permanent(tmp_path: Path) -> None:
    raw = _production()
    del raw["compliance"]["experiment"]
    assert _rules(tmp_path, raw) == {"experiment-missing"}
    raw["compliance"]["legal_basis"]["permanent"] = True
    assert _rules(tmp_path, raw) == set()
    raw["compliance"]["legal_basis"]["permanent"] = False
    raw["compliance"]["production"] = False
    assert _rules(tmp_path, raw) == set()


def test_experiment_ended_at_midnight_after_the_last_day(tmp_path: Path) -> None:
    raw = _production()
    # 2028-06-30 is the last day, Europe/Paris: it ends at 2028-06-30 22:00 UTC
    assert _rules(tmp_path, raw, datetime(2028, 6, 30, 21, 59, tzinfo=UTC)) == set()
    assert _rules(tmp_path, raw, datetime(2028, 6, 30, 22, 0, tzinfo=UTC)) == {"experiment-ended"}
    comp = ComplianceSettings.model_validate(raw["compliance"])
    assert experiment_findings(comp, datetime(2026, 1, 1, tzinfo=UTC)) == []  # before start


def test_public_counts_floors(tmp_path: Path) -> None:
    raw = _production()
    raw["web"] = {"public_counts": {"delay_h": 23.5, "min_count": 5}}
    assert _rules(tmp_path, raw) == {"public-counts-live"}
    raw["web"] = {"public_counts": {"delay_h": 48, "min_count": 2}}
    assert _rules(tmp_path, raw) == {"public-counts-live"}
    raw["web"] = {"public_counts": {"delay_h": 48, "min_count": 3}}
    assert _rules(tmp_path, raw) == set()
    raw["web"] = {"public_page": False, "public_counts": {"delay_h": 0, "min_count": 0}}
    assert _rules(tmp_path, raw) == set()  # nothing is published


def test_purposes_are_stored_per_language() -> None:
    comp = ComplianceSettings()
    (purpose,) = comp.purposes
    assert purpose.text("fr").startswith("Détecter") and purpose.text("en").startswith("Detect")
    with pytest.raises(ValidationError):
        ComplianceSettings.model_validate({"purposes": ["Detect gunshots"]})
    with pytest.raises(ValidationError):
        Purpose.model_validate({"en": "Detect gunshots"})  # French is required too
    with pytest.raises(ValidationError):
        Purpose.model_validate({"en": "x", "fr": "x", "labels": ["speech"]})
