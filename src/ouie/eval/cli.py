"""Commands of this role (placeholder until the role lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this role's commands to the root app."""
