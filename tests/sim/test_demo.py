"""``ouie demo --headless``: scenarios end to end through the real hub, combined scorecard."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from ouie.cli import app
from ouie.sim import demo
from tests.node.fakes import LoudnessClassifier


def test_plan_loops_and_cuts_to_the_duration() -> None:
    once = demo.plan(("shooting", "graffiti"), None)
    assert once.items == [("shooting", 50.0), ("graffiti", 40.0)]
    cut = demo.plan(("shooting", "graffiti"), 150.0)  # 50 + 15 + 40 + 15 = 120: 30 s left
    assert cut.items == [("shooting", 50.0), ("graffiti", 40.0), ("shooting", 30.0)]
    assert cut.total_s == 150.0


def test_headless_demo_writes_a_combined_scorecard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "create_sim_classifier", lambda *a, **k: LoudnessClassifier())
    options = demo.DemoOptions(
        headless=True, duration_s=20.0, scenarios=("shooting",), backend="test"
    )
    card = asyncio.run(demo.run_demo(options, Console(file=io.StringIO())))
    assert card["runs"] == 1 and card["duration_s"] == 20.0
    assert card["events"] == 2  # shots at 12 s and 15.5 s; the rest is cut
    assert card["scenarios"][0]["scenario"] == "shooting"
    for key in ("detected", "missed", "false_alarms", "localisation_error_m", "latency_s"):
        assert key in card
    assert set(card["latency_s"]) >= {"p50", "p95"}
    assert set(card["localisation_error_m"]) >= {"median", "p90"}


def test_cli_lists_and_rejects_unknown_scenarios() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["sim", "list"])
    assert listed.exit_code == 0 and "shooting" in listed.output
    failed = runner.invoke(app, ["sim", "run", "no-such-scenario", "--backend", "yamnet"])
    assert failed.exit_code == 2
    assert "no-such-scenario" in failed.output


def test_cli_demo_headless_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "create_sim_classifier", lambda *a, **k: LoudnessClassifier())
    out = tmp_path / "demo.json"
    result = CliRunner().invoke(
        app, ["demo", "--headless", "--duration", "8", "--json", str(out), "--no-dataset"]
    )
    assert result.exit_code == 0, result.output
    written: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert written["runs"] == 1 and written["scenarios"][0]["dataset"] is None
