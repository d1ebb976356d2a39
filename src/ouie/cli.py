"""The ``ouie`` command: one typer app; each role registers its own commands.

Role modules import their heavy dependencies inside the command functions, so ``ouie --help``
stays fast and a node does not import the hub's web stack.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="ouie",
    help="Privacy-by-design acoustic event detection and alarm verification.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench = typer.Typer(name="bench", help="Measure speed and memory.", no_args_is_help=True)
app.add_typer(bench)

ROLE_COMMAND_MODULES = (
    "ouie.node.cli",
    "ouie.models.cli",
    "ouie.eval.cli",
    "ouie.hub.cli",
    "ouie.compliance.cli",
    "ouie.sim.cli",
    "ouie.verify.cli",
)


def _register_roles() -> None:
    for name in ROLE_COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(app, bench)


@app.command()
def version() -> None:
    """Print ouie's version."""
    from ouie import __version__

    typer.echo(__version__)


_register_roles()


def main() -> None:
    app()
