"""``ouie user add``, ``ouie sensor add``, ``ouie audit verify|export``,
``ouie hub --migrate-only``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from ouie.cli import app
from ouie.hub.db import AuditEntry, make_engine


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("OUIE_DATABASE_URL", raising=False)
    path = tmp_path / "hub.yaml"
    path.write_text(f"database:\n  url: sqlite:///{tmp_path / 'hub.sqlite3'}\n", encoding="utf-8")
    return path


def test_cli_manages_users_sensors_and_audit(config: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["hub", "--config", str(config), "--migrate-only"]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "user",
            "add",
            "alice",
            "--role",
            "admin",
            "--config",
            str(config),
            "--password-stdin",
            "--token",
        ],
        input="a long password\n",
    )
    assert result.exit_code == 0, result.output
    assert "api token: ouie_" in result.output
    bad = runner.invoke(
        app,
        ["user", "add", "bob", "--role", "king", "--config", str(config), "--password-stdin"],
        input="a long password\n",
    )
    assert bad.exit_code == 2
    result = runner.invoke(
        app,
        [
            "sensor",
            "add",
            "paris",
            "lamp-1",
            "--lat",
            "48.86",
            "--lon",
            "2.37",
            "--config",
            str(config),
        ],
    )
    assert result.exit_code == 0 and "ingest token: ouies_" in result.output
    verify = runner.invoke(app, ["audit", "verify", "--config", str(config)])
    assert verify.exit_code == 0 and "intact: 2 entries" in verify.output
    out = tmp_path / "audit.jsonl"
    assert (
        runner.invoke(
            app, ["audit", "export", "--config", str(config), "--out", str(out)]
        ).exit_code
        == 0
    )
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [entry["action"] for entry in lines] == ["user.added", "sensor.added"]

    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(actor="mallory"))
    engine.dispose()
    broken = runner.invoke(app, ["audit", "verify", "--config", str(config)])
    assert broken.exit_code == 1


def test_hub_refuses_to_start_in_production_mode_on_findings(tmp_path: Path) -> None:
    bad = tmp_path / "hub.yaml"
    bad.write_text(
        "database:\n"
        f"  url: sqlite:///{tmp_path / 'hub.sqlite3'}\n"
        "compliance:\n"
        "  production: true\n",  # no controller, DPO, legal basis, zone: must not start
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["hub", "--config", str(bad), "--migrate-only"])
    assert result.exit_code == 2
    assert "refusing to start in production mode" in result.output
    assert not (tmp_path / "hub.sqlite3").exists()
