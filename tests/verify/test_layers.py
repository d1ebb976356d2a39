"""verify is a library of actions the hub composes: it never imports the layers above it, and
the settings it is configured with live below it, in config."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ouie.config
import ouie.verify

ABOVE_VERIFY = ("ouie.hub", "ouie.web", "ouie.sim", "ouie.eval", "ouie.compliance", "ouie.train")
VERIFY_SETTINGS = ("verify", "cameras", "drones", "outputs", "secrets")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (inside functions and TYPE_CHECKING too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "path",
    sorted(Path(ouie.verify.__file__).parent.rglob("*.py")),
    ids=lambda p: p.name,
)
def test_verify_imports_nothing_above_it(path: Path) -> None:
    upward = {m for m in imported_modules(path) if m.startswith(ABOVE_VERIFY)}
    assert not upward, f"{path.name} imports {sorted(upward)}"


@pytest.mark.parametrize("name", VERIFY_SETTINGS)
def test_verify_settings_import_only_config_and_core(name: str) -> None:
    path = Path(ouie.config.__file__).parent / f"{name}.py"
    ours = {m for m in imported_modules(path) if m.startswith("ouie.")}
    assert all(m.startswith(("ouie.config", "ouie.core")) for m in ours), sorted(ours)
