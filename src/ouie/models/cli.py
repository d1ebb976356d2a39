"""``ouie models list|verify|import``: what the model directory holds and how to fill it.

Nothing is downloaded: ``import`` copies the third-party files from a folder the operator
already has (e.g. ``../shared/models``), checking each against its known sha256, and then
exports mn04 to ONNX when torch (the ``train`` extra) is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from ouie.models.store import KNOWN_FILES, model_dir, sha256_of, write_sidecar

if TYPE_CHECKING:
    from rich.table import Table

MN04_WEIGHTS = "mn04_as_mAP_432.pt"
MN04_ONNX = "mn04_as.onnx"
#: Third-party files ``import`` copies: every known file with a fixed digest.
THIRD_PARTY_FILES: tuple[str, ...] = tuple(
    name for name, known in KNOWN_FILES.items() if known.sha256 is not None
)
LICENCE_GLOB = "LICENSE-*.txt"
TRAIN_EXTRA_HINT = (
    "the mn04 ONNX export needs torch: install the train extra "
    "(pip install 'ouie[train]') and run `ouie models import` again"
)

ExportOnnx = Callable[[Path, Path], None]
#: Packages of the ``train`` extra that the export needs; missing ones get TRAIN_EXTRA_HINT.
TRAIN_PACKAGES = frozenset({"torch", "onnx", "onnxscript"})

ModelDirOption = Annotated[
    Path | None,
    typer.Option(
        "--model-dir",
        help="model directory (default: $OUIE_MODEL_DIR or ~/.cache/ouie/models)",
        file_okay=False,
    ),
]

models = typer.Typer(
    name="models",
    help="List, verify and import model files (sha256-checked; nothing is downloaded).",
    no_args_is_help=True,
)

_STATUS_STYLE = {
    "present": "green",
    "missing": "yellow",
    "bad digest": "bold red",
    "no digest": "red",
}


def _directory(option: Path | None) -> Path:
    return option.expanduser() if option is not None else model_dir()


@models.command("list")
def list_backends(directory: ModelDirOption = None) -> None:
    """Show each classifier backend and the state of the model files it needs."""
    from rich.console import Console
    from rich.markup import escape
    from rich.tree import Tree

    from ouie.models.inventory import backend_info, check_file
    from ouie.node.classifiers.registry import backend_names

    folder = _directory(directory)
    console = Console()
    tree = Tree(f"classifier backends, model directory [bold]{escape(str(folder))}[/bold]")
    missing_any = False
    for name in backend_names():
        info = backend_info(name)
        if info.error is not None:
            tree.add(f"[bold]{name}[/bold]: [red]cannot load: {escape(info.error)}[/red]")
            continue
        branch = tree.add(f"[bold]{name}[/bold]: {escape(info.description)}")
        if not info.model_files:
            branch.add("[dim]no model files needed (bundled)[/dim]")
        for file_name in info.model_files:
            check = check_file(file_name, folder)
            missing_any = missing_any or not check.ok
            style = _STATUS_STYLE[check.status.value]
            branch.add(f"{file_name}  [{style}]{check.status.value}[/{style}]")
    console.print(tree)
    if missing_any:
        console.print(
            "Fill the model directory with [bold]ouie models import --from DIR[/bold] "
            "(DIR: the ouie shared models folder, e.g. ../shared/models)."
        )


@models.command("verify")
def verify(directory: ModelDirOption = None) -> None:
    """Check every model file in the model directory against its sha256; exit 1 on a mismatch."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ouie.models.inventory import FileStatus, check_file, files_to_verify

    folder = _directory(directory)
    console = Console()
    names = files_to_verify(folder)
    if not names:
        console.print(
            f"[yellow]no model files in {escape(str(folder))}[/yellow]: nothing to verify"
        )
        return
    table = Table(title=f"model files in {escape(str(folder))}", title_justify="left")
    table.add_column("file", style="bold", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("sha256", overflow="fold")
    failures = 0
    for name in names:
        check = check_file(name, folder)
        style = _STATUS_STYLE[check.status.value]
        detail = (check.actual or "")[:16] + "…"
        if not check.ok:
            failures += 1
            if check.expected is not None:
                detail = f"{(check.actual or '')[:12]}…, expected {check.expected[:12]}…"
            elif check.status is FileStatus.NO_DIGEST:
                detail = f"no {name}.sha256 beside it: re-create it with `ouie models import`"
        table.add_row(name, f"[{style}]{check.status.value}[/{style}]", detail)
    console.print(table)
    if failures:
        Console(stderr=True).print(
            f"[bold red]{failures} model file(s) do not match their sha256[/bold red]: "
            "replace them with `ouie models import --from DIR`"
        )
        raise typer.Exit(1)
    console.print(f"[green]all {len(names)} model file(s) match their sha256[/green]")


def _load_exporter() -> ExportOnnx | None:
    """``ouie.train.mn04_export.export_onnx``, or None when torch is not installed."""
    if importlib.util.find_spec("torch") is None:
        return None
    module = importlib.import_module("ouie.train.mn04_export")
    return cast(ExportOnnx, module.export_onnx)


def _is_train_dependency(error: ImportError) -> bool:
    return (error.name or "").split(".")[0] in TRAIN_PACKAGES


def _copy_checked(source: Path, target: Path, expected: str) -> None:
    partial = target.with_name(target.name + ".part")
    try:
        shutil.copyfile(source, partial)
        actual = sha256_of(partial)
        if actual != expected:
            raise OSError(f"copy of {source.name} has sha256 {actual[:12]}…, expected {expected}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


@models.command("import")
def import_files(
    source: Annotated[
        Path,
        typer.Option(
            "--from",
            help="folder holding the third-party model files (e.g. ../shared/models)",
            exists=True,
            file_okay=False,
            dir_okay=True,
            resolve_path=True,
        ),
    ],
    directory: ModelDirOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="copy and export again even when present")
    ] = False,
) -> None:
    """Copy the third-party model files into the model directory (digests checked) and export
    mn04 to ONNX when torch is installed."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ouie.models.inventory import FileStatus, check_file

    folder = _directory(directory)
    console = Console()
    errors = Console(stderr=True)
    available = [name for name in THIRD_PARTY_FILES if (source / name).is_file()]
    if not available:
        errors.print(
            f"[bold red]no ouie model files in {escape(str(source))}[/bold red] "
            f"(looked for: {', '.join(THIRD_PARTY_FILES)})"
        )
        raise typer.Exit(1)
    folder.mkdir(parents=True, exist_ok=True)

    table = Table(title=f"import into {escape(str(folder))}", title_justify="left")
    table.add_column("file", style="bold", no_wrap=True)
    table.add_column("result")
    failures = 0
    for name in THIRD_PARTY_FILES:
        expected = KNOWN_FILES[name].sha256
        assert expected is not None
        if name not in available:
            table.add_row(name, f"[yellow]not in {escape(str(source))}[/yellow]")
            continue
        if not force and check_file(name, folder).status is FileStatus.PRESENT:
            table.add_row(name, "[green]already present[/green]")
            continue
        actual = sha256_of(source / name)
        if actual != expected:
            failures += 1
            table.add_row(
                name,
                f"[bold red]refused: sha256 {actual[:12]}…, expected {expected[:12]}…[/bold red]",
            )
            continue
        try:
            _copy_checked(source / name, folder / name, expected)
        except OSError as error:
            failures += 1
            table.add_row(name, f"[bold red]copy failed: {escape(str(error))}[/bold red]")
            continue
        table.add_row(name, "[green]copied, sha256 ok[/green]")
    for licence in sorted(source.glob(LICENCE_GLOB)):
        shutil.copyfile(licence, folder / licence.name)
        table.add_row(licence.name, "copied (licence text)")

    notes: list[str] = []
    failures += _export_mn04(folder, force, table, notes)
    console.print(table)
    for note in notes:
        console.print(note)
    if failures:
        errors.print(f"[bold red]{failures} file(s) could not be imported[/bold red]")
        raise typer.Exit(1)


def _export_mn04(folder: Path, force: bool, rows: Table, notes: list[str]) -> int:
    """Export mn04 to ONNX beside its weights; returns the number of failures (0 or 1) and
    appends anything the operator must act on to ``notes``."""
    from rich.markup import escape

    from ouie.models.inventory import FileStatus, check_file

    if check_file(MN04_WEIGHTS, folder).status is not FileStatus.PRESENT:
        rows.add_row(MN04_ONNX, f"[yellow]not exported: {MN04_WEIGHTS} is not in place[/yellow]")
        return 0
    target = folder / MN04_ONNX
    if not force and check_file(MN04_ONNX, folder).status is FileStatus.PRESENT:
        rows.add_row(MN04_ONNX, "[green]already exported[/green]")
        return 0
    skipped = "[yellow]skipped: the train extra is not installed[/yellow]"
    hint = f"[yellow]{MN04_ONNX} not created[/yellow]: {escape(TRAIN_EXTRA_HINT)}"
    try:
        exporter = _load_exporter()
    except ImportError as error:
        if not _is_train_dependency(error):
            rows.add_row(
                MN04_ONNX, f"[bold red]export unavailable: {escape(str(error))}[/bold red]"
            )
            return 1
        exporter = None
    if exporter is None:
        rows.add_row(MN04_ONNX, skipped)
        notes.append(hint)
        return 0
    try:
        exporter(folder / MN04_WEIGHTS, target)
    except Exception as error:  # report any export failure as one row, keep the other files
        if isinstance(error, ImportError) and _is_train_dependency(error):
            rows.add_row(MN04_ONNX, f"{skipped} ({escape(str(error))})")
            notes.append(hint)
            return 0
        rows.add_row(
            MN04_ONNX,
            f"[bold red]export failed: {type(error).__name__}: {escape(str(error))}[/bold red]",
        )
        return 1
    if not target.is_file():
        rows.add_row(MN04_ONNX, "[bold red]export failed: no file was written[/bold red]")
        return 1
    digest = write_sidecar(target)
    rows.add_row(MN04_ONNX, f"[green]exported[/green], sha256 {digest[:12]}… recorded")
    return 0


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``ouie models`` to the root app."""
    app.add_typer(models)
