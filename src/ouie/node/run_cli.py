"""``ouie node`` (placeholder until the node runtime lands)."""

from __future__ import annotations

import typer


def register_node_command(app: typer.Typer) -> None:
    """Add ``ouie node`` to the root app."""
