"""``ouie node --config node.yaml``: run a sensor until its source ends or a signal stops it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

LOG_LEVELS = ("debug", "info", "warning", "error")


def register_node_command(app: typer.Typer) -> None:
    @app.command("node")
    def node(
        config: Annotated[
            Path | None,
            typer.Option(
                "--config",
                "-c",
                help="node settings (YAML, see examples/node.yaml); OUIE_NODE__* env overrides",
                dir_okay=False,
            ),
        ] = None,
        log_level: Annotated[
            str, typer.Option("--log-level", help="debug, info, warning or error")
        ] = "info",
    ) -> None:
        """Run a sensor: audio in, event and status messages out. Audio never leaves it."""
        import asyncio

        from ouie.config.loader import ConfigError, load_settings
        from ouie.config.node import NodeSettings
        from ouie.models.store import ModelFileError
        from ouie.node.audio_io import AudioInputError
        from ouie.node.classifiers.base import ClassifierError
        from ouie.node.runtime import NodeRuntime

        level = log_level.lower()
        if level not in LOG_LEVELS:
            raise typer.BadParameter(
                f"must be one of {', '.join(LOG_LEVELS)}", param_hint="--log-level"
            )
        # Logs go to stderr: with publish.kind jsonl and no path, stdout carries the messages.
        logging.basicConfig(
            stream=sys.stderr,
            level=level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        from ouie.privacy.scrub import install_log_scrubbing

        install_log_scrubbing()  # broker passwords in URLs never reach a log line
        try:
            settings = load_settings(NodeSettings, config)
        except ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        try:
            summary = asyncio.run(NodeRuntime(settings).run())
        except (AudioInputError, ClassifierError, ModelFileError, ValueError, OSError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:  # second signal: cancelled mid-way
            raise typer.Exit(130) from None
        stats = summary.stats
        logging.getLogger("ouie.node").info(
            "node stopped: %d events, %d heartbeats, %d speech suppressions, "
            "%d dropped chunks, %d invalid samples",
            summary.events_published,
            summary.status_published,
            stats.speech_suppressions,
            stats.dropped_chunks,
            stats.invalid_samples,
        )
