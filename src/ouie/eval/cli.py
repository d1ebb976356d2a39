"""``ouie eval``: measure a backend on a labels.csv dataset; ``ouie eval compare``: reports.

Heavy imports (the pipeline, sed_eval, matplotlib) happen inside the commands.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

import typer

from ouie.config.classifiers import DEFAULT_BACKEND

T = TypeVar("T")

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from ouie.eval.result import EvalResult
    from ouie.eval.runner import ProgressSink
    from ouie.eval.source_result import SourceSplitResult

eval_app = typer.Typer(
    name="eval",
    help="Evaluate a classifier backend on a labelled dataset (DCASE metrics, false alarms, "
    "latency). Run `ouie eval --data DIR --json OUT`.",
    invoke_without_command=True,
    no_args_is_help=False,
)


class Mode(StrEnum):
    CLIPS = "clips"
    MIXTURES = "mixtures"
    BOTH = "both"


class Device(StrEnum):
    CPU = "cpu"
    CUDA = "cuda"


class Split(StrEnum):
    FOLD = "fold"
    SOURCE = "source"


class Negatives(StrEnum):
    STREET = "street"
    ALL = "all"


class _RichProgress:
    """The runner's progress sink on a rich progress bar (one task per pass)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, name: str, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(name, total=total)

    def advance(self, steps: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, steps)


def _with_progress(err: Console, run: Callable[[ProgressSink], T]) -> T:
    """``run`` with a rich progress bar on stderr; an ``EvalError`` becomes a one-line
    ``error:`` and exit status 2."""
    from ouie.eval.runner import EvalError

    try:
        with _progress(err) as progress:
            return run(_RichProgress(progress))
    except EvalError as exc:
        raise _fail(err, str(exc)) from exc


def _progress(console: Console) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _fail(console: Console, message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


@eval_app.callback()
def evaluate(
    ctx: typer.Context,
    data: Annotated[
        list[Path] | None,
        typer.Option(
            help="dataset directory holding labels.csv (repeatable with --split source)",
            show_default=False,
        ),
    ] = None,
    split: Annotated[
        Split,
        typer.Option(help="fold: hash folds (--fold K); source: leave one source_repo out"),
    ] = Split.FOLD,
    builds: Annotated[
        Path | None,
        typer.Option(
            help="--split source, trained backends: folder of builds, each with a build.json "
            "naming the sources it was trained without",
            show_default=False,
        ),
    ] = None,
    backend: Annotated[str, typer.Option(help="classifier backend")] = DEFAULT_BACKEND,
    mode: Annotated[Mode, typer.Option(help="isolated clips, synthetic mixtures, or both")] = (
        Mode.BOTH
    ),
    fold: Annotated[
        int | None, typer.Option(help="evaluate only this fold (0-4); default: all clips")
    ] = None,
    device: Annotated[Device, typer.Option(help="inference device")] = Device.CPU,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the result JSON here", show_default=False)
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="write a self-contained HTML report here")
    ] = None,
    plots: Annotated[
        Path | None, typer.Option(help="also write the report's plots as PNG files here")
    ] = None,
    seed: Annotated[int, typer.Option(help="mixture generation seed")] = 2017,
    config: Annotated[
        Path | None, typer.Option(help="node YAML for thresholds and privacy settings")
    ] = None,
    latency_mixtures: Annotated[
        int, typer.Option(min=0, help="mixtures streamed for latency (0: all)")
    ] = 60,
    threads: Annotated[int, typer.Option(min=1, help="inference threads")] = 1,
) -> None:
    """Evaluate a backend: event F1 / error rate, false alarms per hour, latency."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console

    from ouie.eval.runner import EvalOptions, run_eval

    err = Console(stderr=True)
    if not data:
        raise _fail(err, "--data DIR is required (a folder with labels.csv)")
    if json_out is None and report is None:
        raise _fail(err, "give --json OUT (and/or --report OUT.html) for the results")
    if split is Split.SOURCE:
        if fold is not None:
            raise _fail(err, "--fold and --split source exclude each other (a source is the fold)")
        if plots is not None:
            raise _fail(err, "--plots is not available with --split source")
        _source_split(data, backend, builds, mode, device, seed, config, threads, json_out, report)
        return
    if len(data) > 1:
        raise _fail(err, "several --data dirs need --split source (--split fold reads one)")
    if builds is not None:
        raise _fail(err, "--builds needs --split source")
    options = EvalOptions(
        data_dir=data[0],
        backend=backend,
        mode=mode.value,
        fold=fold,
        device=device.value,
        seed=seed,
        config=config,
        threads=threads,
        latency_mixtures=latency_mixtures,
    )
    run = _with_progress(err, lambda sink: run_eval(options, progress=sink))
    result = run.result
    if json_out is not None:
        _write(json_out, result.model_dump_json(indent=2) + "\n", err)
    if report is not None:
        from ouie.eval.report import write_report

        write_report([result], report, traces=run.traces, plots_dir=plots)
    _summary(result, err)


def _source_split(
    data: list[Path],
    backend: str,
    builds: Path | None,
    mode: Mode,
    device: Device,
    seed: int,
    config: Path | None,
    threads: int,
    json_out: Path | None,
    report: Path | None,
) -> None:
    """``ouie eval --split source``: leave one source_repo out (docs/eval.md)."""
    from rich.console import Console

    from ouie.eval.source_split import SourceSplitOptions, run_source_split

    err = Console(stderr=True)
    options = SourceSplitOptions(
        data_dirs=tuple(data),
        backend=backend,
        builds=builds,
        mode=mode.value,
        device=device.value,
        seed=seed,
        config=config,
        threads=threads,
    )
    result = _with_progress(err, lambda sink: run_source_split(options, progress=sink))
    if json_out is not None:
        _write(json_out, result.model_dump_json(indent=2) + "\n", err)
    if report is not None:
        from ouie.eval.source_report import render_source_report

        _write(report, render_source_report(result), err)
    _source_summary(result, err)


def _source_summary(result: SourceSplitResult, console: Console) -> None:
    from rich.table import Table

    from ouie.eval.clip_recall import FALSE_CLIP_RATES
    from ouie.eval.source_report import (
        HEADERS,
        balanced_text,
        pooled_thresholds_text,
        summary_rows,
    )

    table = Table(
        *HEADERS,
        title=f"{result.backend}, leave one source out: recall at false-clip rate 1/2/5 % "
        "with a threshold per class (* at the pooled thresholds), at 2 % with one threshold "
        "for all, deployed thresholds, mixture event F1",
        title_justify="left",
    )
    for row in summary_rows(result):
        table.add_row(*row)
    console.print(table)
    console.print(
        f"pooled per-class thresholds at 2 %: {pooled_thresholds_text(result.overall.clip_recall)}",
        highlight=False,
        soft_wrap=True,
    )
    rates = " / ".join(f"{rate:.0%}" for rate in FALSE_CLIP_RATES)
    console.print(
        f"balanced recall at {rates} false clips (each source's clips of a label weigh the "
        f"same): all non-targets {balanced_text(result.overall.clip_recall)}; street "
        f"non-targets {balanced_text(result.overall.street_clip_recall)}",
        highlight=False,
        soft_wrap=True,
    )
    deployed, street = result.overall.deployed, result.street_false_alarms()
    if deployed is not None and street.per_hour is not None:
        console.print(
            f"false alarms at the deployed thresholds: {street.per_hour:.1f} per hour on street "
            f"ambience ({street.events} on {street.hours:.2f} h); "
            f"{deployed.false_alarms_per_hour or 0.0:.1f} per hour on all background "
            f"({deployed.background_events} on {deployed.background_hours:.2f} h, hard "
            "look-alikes included)",
            highlight=False,
            soft_wrap=True,
        )
    if result.skipped_files:
        console.print(f"{len(result.skipped_files)} file(s) skipped (see the JSON)")


def _write(path: Path, text: str, err: Console) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _fail(err, f"cannot write {path}: {exc.strerror or exc}") from exc


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _summary(result: EvalResult, console: Console) -> None:
    latency = result.latency_s
    console.print(
        f"{result.backend} ({result.model_id}), {result.n_files} files: "
        f"event F1 {_fmt(result.event_f1)}, ER {_fmt(result.error_rate)}, "
        f"FA/h background {_fmt(result.false_alarms_per_hour, 2)}, "
        f"speech {_fmt(result.speech_false_alarms_per_hour, 2)}, "
        f"latency p95 {_fmt(latency.p95 if latency else None, 2)} s, "
        f"clip accuracy {_fmt(result.clip_accuracy)}",
        highlight=False,
    )


@eval_app.command()
def compare(
    results: Annotated[
        list[Path], typer.Argument(help="result JSON files of `ouie eval`", show_default=False)
    ],
    report: Annotated[Path, typer.Option(help="HTML report to write")] = Path("eval-report.html"),
    plots: Annotated[
        Path | None, typer.Option(help="also write the plots as PNG files here")
    ] = None,
) -> None:
    """Compare several `ouie eval` results (e.g. one per backend) in one HTML report."""
    from pydantic import ValidationError
    from rich.console import Console

    from ouie.eval.report import write_report
    from ouie.eval.result import EvalResult

    err = Console(stderr=True)
    loaded: list[EvalResult] = []
    for path in results:
        try:
            loaded.append(EvalResult.model_validate_json(path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise _fail(err, f"cannot read {path}: {exc.strerror or exc}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise _fail(
                err, f"{path} is not an `ouie eval` result ({where}: {first['msg']})"
            ) from exc
    write_report(loaded, report, traces=[], plots_dir=plots)
    err.print(f"wrote {report}", highlight=False)


@eval_app.command()
def tune(
    data: Annotated[
        list[Path],
        typer.Option(
            help="dataset directory holding labels.csv (repeatable with --split source)",
            show_default=False,
        ),
    ],
    backend: Annotated[str, typer.Option(help="classifier backend")] = DEFAULT_BACKEND,
    split: Annotated[
        Split,
        typer.Option(
            help="fold: F1 on hash folds; source: a false-alarm rate, each clip scored by a "
            "classifier not trained on its source"
        ),
    ] = Split.FOLD,
    held_out_fold: Annotated[
        int | None,
        typer.Option(
            min=0, max=4, help="fold never read (keep it for `ouie eval --fold`); default 0"
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="write the thresholds JSON here (default: print it)")
    ] = None,
    folds: Annotated[
        str | None,
        typer.Option(
            help="comma-separated folds to tune on (default: all but the held-out one); "
            "use folds the model was not trained on"
        ),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(help="model folder to tune (e.g. a candidate ouie-compact build)"),
    ] = None,
    speech_floor_model: Annotated[
        list[str] | None,
        typer.Option(
            help="DIR:FOLDS, repeatable: another build of the same recipe and folds it was "
            "not trained on; its scores on their speech also raise the privacy floor"
        ),
    ] = None,
    builds: Annotated[
        Path | None,
        typer.Option(
            help="--split source, trained backends: folder of builds, each with a build.json "
            "naming the sources it was trained without",
            show_default=False,
        ),
    ] = None,
    max_false_per_day: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="--split source: false alarms per day each label may raise on the "
            "non-target audio (background and speech)",
            show_default=False,
        ),
    ] = None,
    targets: Annotated[
        bool,
        typer.Option(help="--split source: also measure target-clip recall at the thresholds"),
    ] = True,
    negatives: Annotated[
        Negatives,
        typer.Option(
            help="--split source: count false alarms on street non-targets (background, "
            "ambience, crowd, traffic, speech) or on all non-targets (hard negatives too)"
        ),
    ] = Negatives.STREET,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="--split source: write the result JSON here"),
    ] = None,
    write_thresholds: Annotated[
        Path | None,
        typer.Option(
            help="--split source: write the tuned-thresholds file (ouie.node.tuned format) here"
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="--split source: node YAML for the event and privacy settings"),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="inference threads")] = 1,
) -> None:
    """Choose per-label thresholds: by F1 on the other folds (ship them as the backend's
    defaults), or with --split source from a false-alarm rate per day."""
    from rich.console import Console

    err = Console(stderr=True)
    if split is Split.SOURCE:
        fold_only = {
            "--held-out-fold": held_out_fold,
            "--folds": folds,
            "--model-dir": model_dir,
            "--speech-floor-model": speech_floor_model,
            "--out": out,
        }
        given = [name for name, value in fold_only.items() if value is not None]
        if given:
            raise _fail(err, f"{', '.join(given)}: not with --split source")
        if max_false_per_day is None:
            raise _fail(err, "--split source needs --max-false-per-day N")
        _tune_source(
            data, backend, builds, max_false_per_day, targets, json_out, write_thresholds,
            config, threads, err, "street" if negatives is Negatives.STREET else "all",
        )  # fmt: skip
        return
    source_only = {
        "--builds": builds,
        "--max-false-per-day": max_false_per_day,
        "--json": json_out,
        "--write-thresholds": write_thresholds,
        "--config": config,
    }
    given = [name for name, value in source_only.items() if value is not None]
    if given:
        raise _fail(err, f"{', '.join(given)} need --split source")
    if len(data) > 1:
        raise _fail(err, "several --data dirs need --split source (--split fold reads one)")
    _tune_folds(data[0], backend, held_out_fold or 0, out, folds, model_dir, speech_floor_model)


def _tune_source(
    data: list[Path],
    backend: str,
    builds: Path | None,
    max_false_per_day: float,
    targets: bool,
    json_out: Path | None,
    write_thresholds: Path | None,
    config: Path | None,
    threads: int,
    err: Console,
    negatives: Literal["street", "all"] = "street",
) -> None:
    """``ouie eval tune --split source``: thresholds from a false-alarm rate (docs/eval.md)."""
    from ouie.eval.alarm_tune import AlarmTuneOptions, run_alarm_tune

    options = AlarmTuneOptions(
        data_dirs=tuple(data),
        backend=backend,
        max_false_per_day=max_false_per_day,
        builds=builds,
        targets=targets,
        config=config,
        threads=threads,
        negatives=negatives,
    )
    result = _with_progress(err, lambda sink: run_alarm_tune(options, progress=sink))
    if json_out is not None:
        _write(json_out, result.model_dump_json(indent=2) + "\n", err)
    if write_thresholds is not None:
        _write(write_thresholds, result.tuned.model_dump_json(indent=2) + "\n", err)
    from ouie.eval.alarm_report import alarm_table

    err.print(alarm_table(result))
    if result.skipped_files:
        err.print(f"{len(result.skipped_files)} file(s) skipped (see the JSON)")
    for path in (json_out, write_thresholds):
        if path is not None:
            err.print(f"wrote {path}", highlight=False)


def _tune_folds(
    data: Path,
    backend: str,
    held_out_fold: int,
    out: Path | None,
    folds: str | None,
    model_dir: Path | None,
    speech_floor_model: list[str] | None,
) -> None:
    """``ouie eval tune`` (``--split fold``): F1 on the tuning folds, then the speech floor."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from ouie.config.classifiers import ClassifierSettings
    from ouie.eval.dataset import DatasetError, load_dataset, select_folds
    from ouie.eval.tune import SpeechFloorSource, speech_floor_clips, tuning_folds
    from ouie.eval.tune import tune as run_tune
    from ouie.node.classifiers.base import ClassifierError
    from ouie.node.classifiers.registry import create_classifier

    err = Console(stderr=True)
    try:
        wanted = None if folds is None else [int(f) for f in folds.split(",") if f.strip()]
        chosen = tuning_folds(held_out_fold, wanted)
        classifier = create_classifier(ClassifierSettings(backend=backend, model_dir=model_dir))
        dataset = load_dataset(data)
        total = len(select_folds(dataset, chosen))
        floor_sources = []
        for spec in speech_floor_model or []:
            where, _, fold_list = spec.rpartition(":")
            if not where or not fold_list:
                raise ValueError(f"--speech-floor-model wants DIR:FOLDS, got {spec!r}")
            extra_folds = tuning_folds(held_out_fold, [int(f) for f in fold_list.split(",")])
            extra = create_classifier(ClassifierSettings(backend=backend, model_dir=Path(where)))
            floor_sources.append(SpeechFloorSource(extra, tuple(extra_folds)))
            total += len(speech_floor_clips(dataset, extra_folds))
    except (ClassifierError, DatasetError, RuntimeError, ValueError) as exc:
        raise _fail(err, str(exc)) from exc
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"scoring folds {chosen}", total=total)
        result, choices = run_tune(
            data,
            classifier,
            held_out_fold,
            advance=lambda: progress.advance(task),
            folds=chosen,
            speech_floor_from=floor_sources,
        )
    table = Table("label", "threshold", "F1 (tuning folds)", "positives", "negatives", "speech max")
    for choice in choices:
        f1 = "default (too few clips)" if choice.f1 is None else f"{choice.f1:.3f}"
        speech = "—" if choice.speech_max is None else f"{choice.speech_max:.2f}"
        table.add_row(
            choice.label.value,
            f"{choice.threshold:.2f}" + (" (speech floor)" if choice.raised_for_speech else ""),
            f1,
            str(choice.positives),
            str(choice.negatives),
            speech,
        )
    err.print(table)
    text = result.model_dump_json(indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"wrote {out}", highlight=False)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``ouie eval`` (and ``ouie eval compare``) to the root app; ``ouie eval privacy``
    is added by ``ouie.compliance.cli``, which sits above eval."""
    app.add_typer(eval_app)
