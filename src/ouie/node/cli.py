"""``ouie detect`` (files → events) and, via ``run_cli``, ``ouie node`` (a running sensor)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ouie.node import run_cli


class OutputFormat(StrEnum):
    JSONL = "jsonl"
    TABLE = "table"


def detect(
    files: Annotated[
        list[Path], typer.Argument(help="audio files or folders (WAV/FLAC/OGG)", show_default=False)
    ],
    backend: Annotated[
        str | None, typer.Option(help="classifier backend (default: the config's, else auto)")
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="output format")] = (
        OutputFormat.TABLE
    ),
    config: Annotated[
        Path | None, typer.Option(help="node YAML for thresholds and privacy settings")
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="inference threads")] = 1,
    allow_truncated: Annotated[
        bool,
        typer.Option(
            "--allow-truncated",
            help="list the events of the readable part of a truncated file (warned) instead "
            "of failing on it",
        ),
    ] = False,
) -> None:
    """Find sound events in audio files; prints one line per event (speech is never reported).

    Files are read in blocks, so memory stays bounded for any length. Exit status: 0; 1 when
    a file could not be read or is truncated (without --allow-truncated); 2 for a bad
    config, backend or file list.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress
    from rich.table import Table

    from ouie.config.loader import ConfigError, load_settings
    from ouie.config.node import NodeSettings
    from ouie.node.audio_io import AudioInputError, audio_files
    from ouie.node.classifiers.base import ClassifierError
    from ouie.node.classifiers.registry import create_classifier
    from ouie.node.file_detect import detect_file
    from ouie.privacy.speech_guard import SpeechGuard

    err = Console(stderr=True)
    try:
        settings = load_settings(NodeSettings, config)
        classifier_settings = settings.classifier.model_copy(
            update={"threads": threads, **({"backend": backend} if backend else {})}
        )
        classifier = create_classifier(classifier_settings)
        paths = audio_files(files)
    except (ConfigError, ClassifierError, AudioInputError, RuntimeError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc

    guard = SpeechGuard(settings.privacy)
    table = Table(
        "file", "label", "onset_s", "offset_s", "score", "dBFS", title=classifier.model_id
    )
    failures = 0
    show_progress = output is OutputFormat.TABLE and len(paths) > 1
    with Progress(console=err, transient=True, disable=not show_progress) as progress:
        task = progress.add_task("detecting", total=len(paths))
        for path in paths:
            progress.advance(task)
            try:
                result = detect_file(
                    path,
                    classifier,
                    settings.events,
                    settings.privacy,
                    guard=guard,
                    ring_buffer_s=settings.ring_buffer_s,
                )
            except AudioInputError as exc:
                err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
                failures += 1
                continue
            except Exception as exc:  # no input may end the run in a traceback
                err.print(
                    f"[red]error:[/red] {escape(str(path))}: could not be analysed "
                    f"({type(exc).__name__}: {escape(str(exc))})",
                    highlight=False,
                )
                failures += 1
                continue
            if result.truncation is not None:
                where = f"{escape(str(path))}: {escape(result.truncation.describe())}"
                if not allow_truncated:
                    # Half a recording must not pass for a quiet one: no events, exit 1.
                    err.print(
                        f"[red]error:[/red] {where}; --allow-truncated lists the events of "
                        "the readable part",
                        highlight=False,
                    )
                    failures += 1
                    continue
                err.print(
                    f"[yellow]warning:[/yellow] {where}; events of the readable part only",
                    highlight=False,
                )
            for event in result.events:
                if output is OutputFormat.JSONL:
                    record = {
                        "file": str(path),
                        "label": event.label.value,
                        "onset_s": round(event.onset_s, 3),
                        "offset_s": round(event.offset_s, 3),
                        "score": event.peak_score,
                        "level_dbfs": event.level_dbfs,
                        "model_id": classifier.model_id,
                    }
                    sys.stdout.write(json.dumps(record) + "\n")
                else:
                    table.add_row(
                        escape(str(path)),
                        event.label.value,
                        f"{event.onset_s:.3f}",
                        f"{event.offset_s:.3f}",
                        f"{event.peak_score:.2f}",
                        f"{event.level_dbfs:.1f}",
                    )
    if output is OutputFormat.TABLE:
        Console().print(table)
    stage_counts = getattr(classifier, "stage_counts", None)
    if stage_counts is not None:  # a cascade: say which stages ran, on how many windows
        err.print(
            "stages: "
            + ", ".join(
                f"{name} ({model}) {getattr(stage_counts, name)} windows"
                for name, model in zip(
                    getattr(classifier, "stages", ()),
                    getattr(classifier, "stage_ids", ()),
                    strict=True,
                )
            ),
            highlight=False,
        )
    if failures:
        raise typer.Exit(1)


def bench_node(
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures here")] = None,
    backend: Annotated[
        list[str] | None, typer.Option(help="backends to measure (default: all)")
    ] = None,
    duration: Annotated[float, typer.Option(min=10.0, help="seconds of audio per backend")] = 120.0,
) -> None:
    """Real-time factor on one core and peak RSS of the node pipeline, per backend."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from ouie.node import bench as node_bench
    from ouie.node.classifiers.registry import backend_names

    names = backend or backend_names()
    results = []
    skipped: dict[str, str] = {}
    with Progress(transient=True) as progress:
        task = progress.add_task("benchmarking", total=len(names))
        for name in names:
            one = node_bench.run([name], duration)
            results.extend(one.backends)
            skipped.update(one.skipped)
            progress.advance(task)
    summary = node_bench.run([], duration).model_copy(
        update={"backends": results, "skipped": skipped}
    )
    table = Table(
        "backend", "pipeline RTF", "classifier RTF", "RSS MB", "events", title=summary.machine
    )
    for row in summary.backends:
        table.add_row(
            row.backend,
            f"{row.rtf:.4f}",
            f"{row.classifier_rtf:.4f}",
            f"{row.rss_mb:.0f}",
            str(row.events),
        )
    console = Console()
    console.print(table)
    for name, reason in summary.skipped.items():
        console.print(f"[yellow]skipped {name}:[/yellow] {reason}", highlight=False)
    if json_out is not None:
        node_bench.write_json(summary, json_out)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command()(detect)
    bench.command("node")(bench_node)
    run_cli.register_node_command(app)
