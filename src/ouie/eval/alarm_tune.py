"""``ouie eval tune --split source``: per-label thresholds from a target false-alarm rate.

Thresholds are derived from a rate of false alarms per day that each label may raise,
measured on background and speech, rather than picked as raw scores (docs/eval.md,
"Thresholds from a false-alarm rate"):

1. Every non-target clip of the ``--data`` dirs (background, ambience, other non-targets,
   ESC-50 non-targets, speech) is scored by a classifier that was not trained on its
   source: the build whose ``excluded_sources`` lists it (``ouie.eval.builds``, chosen as
   ``ouie eval --split source`` chooses) or a zero-shot backend as configured. Clips of a
   source no build excludes are skipped and counted.
2. Each clip is scored once; for every label and every threshold of the grid the node's
   event logic (``detect_offline``: event stage, onset, cut-off check, speech guard; that
   label alone, every other setting from the node config) is replayed on the stored scores
   (``ouie.eval.alarm_replay``) and its events counted.
3. Per label, the false-alarm rate at t is events / seconds measured × 86 400; the threshold
   is the lowest grid value whose rate is ≤ the target, the grid's top when none is.
4. With targets, each target clip (scored out of source too) counts as found when its own
   label, alone, raises an event on it at the threshold chosen.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from ouie.config.node import EventSettings
from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.eval.alarm_replay import (
    CachedGuard,
    ReplayStats,
    ScoredClip,
    label_event_counts,
    score_clip,
)
from ouie.eval.alarm_result import (
    AlarmTiming,
    AlarmTuneResult,
    LabelAlarms,
    SkippedSource,
)
from ouie.eval.dataset import Clip
from ouie.eval.mixtures import AMBIENCE_LABELS, is_speech
from ouie.eval.runner import (
    EvalError,
    NoProgress,
    ProgressSink,
    make_classifier,
    node_settings,
    package_versions,
)
from ouie.eval.source_data import Item, SourceData, group_by_source, load_items
from ouie.eval.source_result import ClassRecall
from ouie.eval.source_split import (
    ClassifierFactory,
    ModelChooser,
    SourceModel,
    SourceSplitOptions,
    check_options,
)
from ouie.node.audio_io import AudioInputError, read_audio
from ouie.node.tuned import TunedThresholds, model_family

#: Candidate thresholds: 0.05 … 0.99 in steps of 0.01 (event thresholds must stay below 1).
GRID: tuple[float, ...] = tuple(round(i / 100, 2) for i in range(5, 100))
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class AlarmTuneOptions:
    data_dirs: tuple[Path, ...]
    backend: str
    max_false_per_day: float
    builds: Path | None = None
    targets: bool = True
    config: Path | None = None
    device: Literal["cpu", "cuda"] = "cpu"
    threads: int = 1
    grid: tuple[float, ...] = GRID
    #: "street": background, ambience, crowd, traffic and speech clips (what a lamp-post
    #: sensor hears all day); "all": every non-target clip, hard negatives included.
    negatives: Literal["street", "all"] = "street"


def counts_as_negative(clip: Clip, negatives: Literal["street", "all"]) -> bool:
    """Whether the false alarms measured include this clip (``AlarmTuneOptions.negatives``)."""
    if clip.is_target:
        return False
    return negatives == "all" or clip.label in AMBIENCE_LABELS or is_speech(clip)


def per_day(events: int, seconds: float) -> float:
    return events * SECONDS_PER_DAY / seconds


def meets(events: int, seconds: float, max_per_day: float) -> bool:
    """Whether ``events`` on ``seconds`` of audio is at most ``max_per_day`` per day (exact
    up to rounding: events × 86 400 ≤ max × seconds)."""
    return events * SECONDS_PER_DAY <= max_per_day * seconds * (1 + 1e-12)


def lowest_meeting(counts: Sequence[int], seconds: float, max_per_day: float) -> int | None:
    """Index of the lowest grid value whose events meet the rate (None: none does)."""
    return next((i for i, n in enumerate(counts) if meets(n, seconds, max_per_day)), None)


@dataclass
class _Tally:
    grid_size: int
    events: dict[EventLabel, list[int]] = field(default_factory=dict)
    speech_events: dict[EventLabel, list[int]] = field(default_factory=dict)
    measured_s: float = 0.0
    speech_s: float = 0.0
    measured_clips: int = 0
    speech_clips: int = 0
    audio_s: float = 0.0
    score_wall_s: float = 0.0
    replay_wall_s: float = 0.0

    def __post_init__(self) -> None:
        for label in EVENT_LABELS:
            self.events[label] = [0] * self.grid_size
            self.speech_events[label] = [0] * self.grid_size


@dataclass
class _Run:
    options: AlarmTuneOptions
    events: EventSettings
    guard: CachedGuard
    sink: ProgressSink
    tally: _Tally
    stats: ReplayStats = field(default_factory=ReplayStats)
    skipped_files: list[str] = field(default_factory=list)

    def scored(self, item: Item, model: SourceModel) -> ScoredClip | None:
        """Read and score one clip (None: unreadable, listed in ``skipped_files``)."""
        try:
            audio, rate = read_audio(item.clip.path)
        except AudioInputError as exc:
            self.skipped_files.append(str(exc))
            return None
        start = time.perf_counter()
        clip = score_clip(audio, rate, model.classifier)
        self.tally.score_wall_s += time.perf_counter() - start
        self.tally.audio_s += clip.duration_s
        self.guard.forget()  # decisions are per clip: the audio spans are this clip's
        return clip

    def measure(self, items: Sequence[Item], model: SourceModel, source: str) -> None:
        """Pass 1: false alarms of every label at every grid value on the non-target clips."""
        self.sink.start(f"{source}: non-targets", len(items))
        for item in items:
            self.sink.advance()
            clip = self.scored(item, model)
            if clip is None:
                continue
            seconds = clip.duration_s
            speech = is_speech(item.clip)
            t = self.tally
            t.measured_s += seconds
            t.measured_clips += 1
            if speech:
                t.speech_s += seconds
                t.speech_clips += 1
            start = time.perf_counter()
            for label in EVENT_LABELS:
                counts = label_event_counts(
                    clip,
                    model.classifier,
                    label,
                    self.options.grid,
                    self.events,
                    self.guard.settings,
                    self.guard,
                    self.stats,
                )
                add(t.events[label], counts)
                if speech:
                    add(t.speech_events[label], counts)
            t.replay_wall_s += time.perf_counter() - start

    def recall(
        self,
        items: Sequence[Item],
        model: SourceModel,
        source: str,
        chosen: dict[EventLabel, float],
        found: dict[EventLabel, list[int]],
    ) -> None:
        """Pass 2: does each target clip's own label, alone, fire at its chosen threshold."""
        self.sink.start(f"{source}: targets", len(items))
        for item in items:
            self.sink.advance()
            clip = self.scored(item, model)
            if clip is None:
                continue
            label = EventLabel(item.clip.label)
            start = time.perf_counter()
            counts = label_event_counts(
                clip,
                model.classifier,
                label,
                [chosen[label]],
                self.events,
                self.guard.settings,
                self.guard,
                self.stats,
            )
            self.tally.replay_wall_s += time.perf_counter() - start
            found[label][0] += int(counts[0] > 0)
            found[label][1] += 1


def add(into: list[int], counts: Sequence[int]) -> None:
    for i, n in enumerate(counts):
        into[i] += n


def _split_options(options: AlarmTuneOptions) -> SourceSplitOptions:
    return SourceSplitOptions(
        data_dirs=options.data_dirs,
        backend=options.backend,
        builds=options.builds,
        mode="clips",
        device=options.device,
        config=options.config,
        threads=options.threads,
    )


def check_grid(grid: Sequence[float]) -> None:
    if not grid or any(not 0.0 < t < 1.0 for t in grid) or list(grid) != sorted(set(grid)):
        raise EvalError("the threshold grid must be increasing values in (0, 1)")


def run_alarm_tune(
    options: AlarmTuneOptions,
    make: ClassifierFactory | None = None,
    progress: ProgressSink | None = None,
) -> AlarmTuneResult:
    """Per-label thresholds meeting ``options.max_false_per_day`` (module docstring)."""
    wall = time.perf_counter()
    if options.max_false_per_day < 0:
        raise EvalError("--max-false-per-day must be ≥ 0")
    check_grid(options.grid)
    split = _split_options(options)
    builds = check_options(split)
    items, listed, skipped_files = load_items(options.data_dirs)
    if not items:
        raise EvalError("--data: no readable audio in the data")
    settings = node_settings(options.config)
    chooser = ModelChooser(split, settings, builds, make or make_classifier)
    run = _Run(
        options,
        settings.events,
        CachedGuard(settings.privacy),
        progress or NoProgress(),
        _Tally(len(options.grid)),
        skipped_files=skipped_files,
    )
    skipped: list[SkippedSource] = []
    measured: dict[str, SourceModel] = {}
    scored_by: dict[str, str] = {}  # every source scored, for non-targets or targets
    later: list[tuple[SourceData, SourceModel, list[Item]]] = []
    for data in group_by_source(items, listed):
        non_targets = [i for i in data.items if counts_as_negative(i.clip, options.negatives)]
        targets = [i for i in data.items if i.clip.is_target] if options.targets else []
        if not non_targets and not targets:
            continue
        model = chooser.for_source(data.source)
        if isinstance(model, str):
            skipped.append(_skipped(data, model))
            continue
        scored_by[data.source] = model.classifier.model_id
        if non_targets:
            run.measure(non_targets, model, data.source)
            measured[data.source] = model
        if targets:
            later.append((data, model, targets))
    tally = run.tally
    if tally.measured_s <= 0:
        reasons = "; ".join(f"{s.source}: {s.reason}" for s in skipped) or "no non-target clips"
        raise EvalError(f"no non-target audio could be measured ({reasons})")
    family = _family([*measured.values(), *(m for _, m, _ in later)])
    chosen_index = {
        label: lowest_meeting(tally.events[label], tally.measured_s, options.max_false_per_day)
        for label in EVENT_LABELS
    }
    chosen = {
        label: options.grid[-1 if index is None else index] for label, index in chosen_index.items()
    }
    found: dict[EventLabel, list[int]] = {label: [0, 0] for label in EVENT_LABELS}
    for data, model, targets in later:
        run.recall(targets, model, data.source, chosen, found)
    labels = [
        _label_block(label, chosen_index[label], chosen[label], run, found[label])
        for label in EVENT_LABELS
    ]
    return AlarmTuneResult(
        backend=options.backend,
        builds_dir=str(options.builds) if options.builds is not None else None,
        data_dirs=[str(d) for d in options.data_dirs],
        max_false_per_day=options.max_false_per_day,
        negatives=options.negatives,
        grid=list(options.grid),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        model_family=family,
        model_ids=scored_by,
        event_settings=_event_settings(settings.events),
        measured_clips=tally.measured_clips,
        measured_hours=round(tally.measured_s / 3600, 4),
        background_hours=round((tally.measured_s - tally.speech_s) / 3600, 4),
        speech_clips=tally.speech_clips,
        speech_hours=round(tally.speech_s / 3600, 4),
        resolution_per_day=round(per_day(1, tally.measured_s), 4),
        sources_measured=sorted(measured),
        skipped_sources=skipped,
        labels=labels,
        tuned=_tuned(options, family, chosen, chosen_index, tally, measured, skipped),
        timing=AlarmTiming(
            audio_s=round(tally.audio_s, 2),
            score_wall_s=round(tally.score_wall_s, 3),
            replay_wall_s=round(tally.replay_wall_s, 3),
            replays=run.stats.replays,
            guard_decisions=run.guard.calls,
            wall_s=round(time.perf_counter() - wall, 3),
        ),
        versions=package_versions(),
        skipped_files=list(dict.fromkeys(run.skipped_files)),
    )


def _skipped(data: SourceData, reason: str) -> SkippedSource:
    non_targets = [i for i in data.items if not i.clip.is_target]
    return SkippedSource(
        source=data.source,
        reason=reason,
        non_target_clips=len(non_targets),
        non_target_hours=round(sum(i.duration_s for i in non_targets) / 3600, 4),
        target_clips=len(data.items) - len(non_targets),
    )


def _family(models: Sequence[SourceModel]) -> str:
    """The model family (``ouie.node.tuned``) every classifier used shares."""
    families = sorted({model_family(m.classifier.model_id) for m in models})
    if len(families) != 1:
        raise EvalError(f"the classifiers used belong to several model families: {families}")
    return families[0]


def _event_settings(events: EventSettings) -> dict[str, float | int | bool]:
    return {
        "hysteresis": events.hysteresis,
        "median_frames": events.median_frames,
        "min_duration_s": events.min_duration_s,
        "merge_gap_s": events.merge_gap_s,
        "one_label_per_window": events.one_label_per_window,
    }


def _label_block(
    label: EventLabel, index: int | None, threshold: float, run: _Run, found: list[int]
) -> LabelAlarms:
    tally = run.tally
    at = len(run.options.grid) - 1 if index is None else index
    events = tally.events[label][at]
    n_found, n = found
    return LabelAlarms(
        label=label.value,
        threshold=threshold,
        met=index is not None,
        events=events,
        false_alarms_per_day=round(per_day(events, tally.measured_s), 4),
        speech_events=tally.speech_events[label][at],
        events_by_threshold=list(tally.events[label]),
        targets=ClassRecall(found=n_found, n=n, recall=round(n_found / n, 4) if n else None)
        if run.options.targets
        else None,
    )


def _tuned(
    options: AlarmTuneOptions,
    family: str,
    chosen: dict[EventLabel, float],
    chosen_index: dict[EventLabel, int | None],
    tally: _Tally,
    measured: dict[str, SourceModel],
    skipped: Sequence[SkippedSource],
) -> TunedThresholds:
    """The tuned-thresholds file (``ouie.node.tuned``), its objective stating the rule."""
    grid = options.grid
    step = round(grid[1] - grid[0], 6) if len(grid) > 1 else 0.0
    scorer = (
        f"builds in {options.builds.name} that left each clip's source out"
        if options.builds is not None
        else f"the zero-shot backend {options.backend}"
    )
    unmet = [label.value for label, index in chosen_index.items() if index is None]
    dropped = sum(s.non_target_clips for s in skipped)
    skipped_note = (
        f"; {dropped} non-target clips of {len(skipped)} sources no build excludes skipped"
        if skipped
        else ""
    )
    tuned_on = (
        f"{', '.join(d.name for d in options.data_dirs)}: {tally.measured_clips} non-target "
        f"clips, {tally.measured_s / 3600:.2f} h ({tally.speech_clips} speech clips, "
        f"{tally.speech_s / 3600:.2f} h) of {len(measured)} sources, scored by {scorer}"
        f"{skipped_note}"
    )
    objective = (
        f"at most {options.max_false_per_day:g} false alarms per day per label: the lowest "
        f"threshold on {grid[0]:g}..{grid[-1]:g} (step {step:g}) at which the node's event "
        "logic (detect_offline with speech guard, that label alone) raises at most that rate "
        + (
            "of events on the street non-target clips (background, ambience, crowd, traffic, "
            "speech)"
            if options.negatives == "street"
            else "of events on every non-target clip (background, ambience, other "
            "non-targets, speech)"
        )
        + f", each scored by a classifier not trained on its source ({scorer}); one "
        f"event = {per_day(1, tally.measured_s):.4g} per day"
        + (f"; no grid value meets it for {', '.join(unmet)}: {grid[-1]:g}" if unmet else "")
    )
    return TunedThresholds(
        model_family=family,
        thresholds=dict(chosen),
        tuned_on=tuned_on,
        objective=objective,
        date=datetime.now(UTC).strftime("%Y-%m-%d"),
    )
