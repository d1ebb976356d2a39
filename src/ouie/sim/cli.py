"""``ouie sim run|list`` (the digital twin) and ``ouie demo``."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ouie.config.classifiers import DEFAULT_BACKEND

sim_app = typer.Typer(
    name="sim",
    help="The digital twin: simulated streets, real nodes, a real hub.",
    no_args_is_help=True,
)

FoldsOption = Annotated[
    str,
    typer.Option(
        "--clip-folds",
        help="dataset folds event clips are drawn from (comma-separated; 'all'); default 0, "
        "the fold ouie-compact never trained on",
    ),
]
DatasetOption = Annotated[
    Path | None,
    typer.Option(
        "--dataset",
        help="dataset directory (labels.csv) for event clips and ambience; default "
        "$OUIE_DATASET_DIR or ../shared/data/dev when present",
        file_okay=False,
    ),
]


def _folds(text: str) -> list[int] | None:
    if text.strip().lower() == "all":
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise typer.BadParameter("comma-separated fold numbers or 'all'") from exc


def _dataset(path: Path | None, disabled: bool) -> Path | None:
    from ouie.sim.scenario import default_dataset_dir

    if disabled:
        return None
    return path if path is not None else default_dataset_dir()


def _logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _write_json(card: dict[str, Any], out: Path | None) -> None:
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def summary_table(card: dict[str, Any], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    columns = ("class", "events", "detected", "missed", "incidents", "false alarms", "mislabelled")
    for column in columns:
        table.add_column(column, justify="right" if column != "class" else "left")
    for label, counts in card["per_class"].items():
        table.add_row(
            label,
            str(counts["events"]),
            str(counts["detected"]),
            str(counts["missed"]),
            str(counts["incidents"]),
            str(counts["false_alarms"]),
            str(counts.get("mislabelled", 0)),
        )
    loc, lat, rounds = card["localisation_error_m"], card["latency_s"], card["rounds"]

    def fmt(value: float | None, unit: str) -> str:
        return "-" if value is None else f"{value:.2f} {unit}"

    table.caption = (
        f"rounds: {rounds['reported']} reported, {rounds['matched']} of {rounds['truth']} "
        f"found, {rounds['located']} located · per located shot: error median "
        f"{fmt(loc['median'], 'm')}, p90 {fmt(loc['p90'], 'm')} (n={loc['n']}); "
        f"{loc['area_covered']}/{loc['area_n']} approximate areas hold the source · "
        f"latency p50 {fmt(lat['p50'], 's')}, p95 {fmt(lat['p95'], 's')} "
        f"· node CPU {card['node_cpu']['percent_of_core_mean']}% of a core per sensor"
    )
    return table


@sim_app.command("run")
def run(
    scenario: Annotated[str, typer.Argument(help="bundled scenario name or a scenario YAML")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the scorecard here", dir_okay=False)
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(help="mqtt://host:port: nodes and hub talk through this broker"),
    ] = None,
    sensors: Annotated[
        int | None,
        typer.Option(min=1, help="replant the scenario on a synthetic grid of N sensors"),
    ] = None,
    realtime: Annotated[
        bool, typer.Option("--realtime/--fast", help="pace audio at real time, or run flat out")
    ] = False,
    site: Annotated[
        str | None, typer.Option(help="bundled site name or site directory (default: bundled)")
    ] = None,
    backend: Annotated[str, typer.Option(help="classifier backend of the nodes")] = DEFAULT_BACKEND,
    model_dir: Annotated[
        Path | None, typer.Option(help="model folder for the backend", file_okay=False)
    ] = None,
    dataset: DatasetOption = None,
    no_dataset: Annotated[
        bool, typer.Option("--no-dataset", help="synthetic sources and ambience only")
    ] = False,
    clip_folds: FoldsOption = "0",
    seed: Annotated[int | None, typer.Option(help="override the scenario's seed")] = None,
    duration: Annotated[
        float | None, typer.Option(min=1.0, help="play only the first S seconds")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="hub database (default: a temporary SQLite file)")
    ] = None,
    onsets: Annotated[
        bool,
        typer.Option(
            "--onsets/--no-onsets",
            help="nodes answer the hub's onset requests (impulse times for shots too few "
            "sensors classified; docs/hub.md)",
        ),
    ] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "warning",
) -> None:
    """Play one scenario through real nodes and a real hub; print its scorecard."""
    import asyncio

    from rich.console import Console

    from ouie.config.loader import ConfigError
    from ouie.models.store import ModelFileError
    from ouie.node.classifiers.base import ClassifierError
    from ouie.sim.runner import RunRequest, SimSettings, run_request
    from ouie.sim.sources import classifier_line, sources_line

    _logging(log_level)
    request = RunRequest(
        scenario=scenario,
        settings=SimSettings(backend=backend, realtime=realtime, broker=broker, onsets=onsets),
        site=site,
        sensors=sensors,
        dataset_dir=_dataset(dataset, no_dataset),
        clip_folds=_folds(clip_folds),
        seed=seed,
        duration_s=duration,
        model_dir=model_dir,
        database_url=database_url,
    )
    try:
        card = asyncio.run(run_request(request))
    except (ConfigError, ClassifierError, ModelFileError, OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    _write_json(card, json_out)
    console = Console()
    console.print(summary_table(card, f"{card['scenario']} on {card['site']}"))
    console.print(sources_line(card["sources"]), highlight=False)
    console.print(classifier_line(card), highlight=False)


@sim_app.command("list")
def list_bundled() -> None:
    """Bundled scenarios and sites."""
    from ouie.config.site import bundled_site_names
    from ouie.sim.scenario import bundled_scenario_names, load_scenario

    for name in bundled_scenario_names():
        spec = load_scenario(name)
        typer.echo(f"{name:16} {spec.duration_s:5.0f} s  {spec.description}")
    typer.echo("sites: " + ", ".join(bundled_site_names()))


def demo(
    headless: Annotated[
        bool, typer.Option(help="no console, no live view: play, print the scorecard, exit")
    ] = False,
    duration: Annotated[
        float | None,
        typer.Option(
            min=1.0, help="seconds of street time to play (headless default: each scenario once)"
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the scorecard here", dir_okay=False)
    ] = None,
    realtime: Annotated[
        bool | None,
        typer.Option(
            "--realtime/--fast", help="default: real time interactive, fast when headless"
        ),
    ] = None,
    broker: Annotated[
        str | None, typer.Option(help="mqtt://host:port instead of the in-process bus")
    ] = None,
    backend: Annotated[str, typer.Option(help="classifier backend of the nodes")] = DEFAULT_BACKEND,
    model_dir: Annotated[
        Path | None, typer.Option(help="model folder for the backend", file_okay=False)
    ] = None,
    host: Annotated[str, typer.Option(help="console address")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="console port (0: any free port)")
    ] = 8080,
    dataset: DatasetOption = None,
    no_dataset: Annotated[
        bool, typer.Option("--no-dataset", help="synthetic sources and ambience only")
    ] = False,
    clip_folds: FoldsOption = "0",
    onsets: Annotated[
        bool,
        typer.Option(
            "--onsets/--no-onsets",
            help="nodes answer the hub's onset requests (docs/hub.md; off: for a comparison)",
        ),
    ] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "warning",
) -> None:
    """Watch ouie work: hub, console and a simulated Saint-Étienne street, in one command."""
    import asyncio

    from rich.console import Console

    from ouie.config.loader import ConfigError
    from ouie.models.store import ModelFileError
    from ouie.node.classifiers.base import ClassifierError
    from ouie.sim.demo import DemoOptions, run_demo
    from ouie.sim.sources import classifier_line, sources_line

    _logging(log_level)
    options = DemoOptions(
        headless=headless,
        duration_s=duration,
        json_out=json_out,
        realtime=realtime,
        broker=broker,
        backend=backend,
        model_dir=model_dir,
        host=host,
        port=port,
        dataset_dir=_dataset(dataset, no_dataset),
        clip_folds=_folds(clip_folds),
        onsets=onsets,
    )
    out = Console()
    try:
        card = asyncio.run(run_demo(options, out))
    except (ConfigError, ClassifierError, ModelFileError, OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    _write_json(card, json_out)
    out.print(summary_table(card, f"ouie demo: {card['runs']} scenario run(s)"))
    out.print(sources_line(card["sources"]), highlight=False)
    out.print(classifier_line(card), highlight=False)
    if headless:
        brief = {k: v for k, v in card.items() if k != "scenarios"}
        typer.echo(json.dumps(brief, ensure_ascii=False))


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.add_typer(sim_app)
    app.command("demo")(demo)
