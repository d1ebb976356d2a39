"""The layers contract in pyproject.toml: imports point down, even inside functions."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports is missing: install the test extra (pip install -e '.[test]')")
    return subprocess.run(
        [exe, "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_layers_contract_is_kept() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_inside_a_function_breaks_it(tmp_path: Path) -> None:
    # The same contract on a copy of the package with one planted upward import (config →
    # hub, inside a function, the way cycles used to be dodged): lint-imports must refuse it.
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "ouie", src / "ouie", ignore=shutil.ignore_patterns("*.onnx"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    planted = src / "ouie" / "config" / "planted.py"
    planted.write_text("def f() -> None:\n    from ouie.hub import service  # noqa\n")
    # PYTHONPATH puts the copy ahead of the installed package.
    env = {**os.environ, "PYTHONPATH": str(src)}
    result = _lint_imports(tmp_path, env)
    assert result.returncode != 0
    assert "ouie.config.planted -> ouie.hub.service" in result.stdout
