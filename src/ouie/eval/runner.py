"""``ouie eval``: load a dataset, run the node's pipeline over it, compute the metrics.

Passes (docs/eval.md):

1. clips: every clip of the fold through ``detect_offline``. Target clips give clip
   accuracy and the confusion table (mode ``clips``/``both``); non-target clips always run,
   as they give the false-alarm rates (background: every non-target clip except speech;
   speech: the ``speech`` clips).
2. mixtures (mode ``mixtures``/``both``): the fold's synthetic mixtures through
   ``detect_offline``: event- and segment-based metrics, AP/PSDS from the score timelines,
   and the figures per EBR.
3. latency (with mixtures): a spread subset of the mixtures pushed through the streaming
   ``DetectionPipeline`` in 0.1 s chunks.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from ouie.config.classifiers import DEFAULT_BACKEND
from ouie.config.loader import ConfigError, load_settings
from ouie.config.node import NodeSettings
from ouie.core.labels import EVENT_LABELS
from ouie.eval.audio import ClipCache, clip_duration
from ouie.eval.dataset import N_FOLDS, Clip, DatasetError, load_dataset, select_folds
from ouie.eval.detection import (
    STREAM_CHUNK_S,
    OfflineDetector,
    OfflineResult,
    stream_events,
    with_activity_offsets,
)
from ouie.eval.metrics import (
    DEFAULT_COLLAR_S,
    PSDS_MIN_CLASS_EVENTS,
    PSDS_PARAMS,
    DetectionScores,
    ScoreTimeline,
    add_confusion,
    clip_correct,
    event_based_scores,
    false_alarms_per_hour,
    match_latencies,
    percentile,
    segment_based_scores,
    threshold_free,
)
from ouie.eval.mixtures import (
    PROTOCOL,
    Mixture,
    MixtureSet,
    MixtureSpec,
    TruthEvent,
    is_speech,
)
from ouie.eval.result import (
    ClassScores,
    EbrScores,
    EvalMode,
    EvalResult,
    LatencySummary,
    MixtureSummary,
    PrCurve,
    Timing,
)
from ouie.node.audio_io import AudioInputError, read_audio
from ouie.node.classifiers.base import Classifier, ClassifierError
from ouie.node.pipeline import DetectedEvent
from ouie.privacy.speech_guard import SpeechGuard

LABELS: tuple[str, ...] = tuple(label.value for label in EVENT_LABELS)
SPEECH_ROW = "speech"
NON_TARGET_ROW = "non_target"
DEFAULT_SEED = 2017
DEFAULT_LATENCY_MIXTURES = 60
TRACES_KEPT = 6


class EvalError(ValueError):
    """The evaluation cannot run; the message is one line, meant for the user."""


class ProgressSink(Protocol):
    def start(self, name: str, total: int) -> None: ...
    def advance(self, steps: int = 1) -> None: ...


class NoProgress:
    def start(self, name: str, total: int) -> None:
        return None

    def advance(self, steps: int = 1) -> None:
        return None


@dataclass(frozen=True)
class EvalOptions:
    data_dir: Path
    backend: str = DEFAULT_BACKEND
    mode: EvalMode = "both"
    fold: int | None = None
    device: Literal["cpu", "cuda"] = "cpu"
    seed: int = DEFAULT_SEED
    collar_s: float = DEFAULT_COLLAR_S
    config: Path | None = None
    threads: int = 1
    latency_mixtures: int = DEFAULT_LATENCY_MIXTURES  # 0: stream every mixture
    mixture_duration_s: float = 30.0


@dataclass(frozen=True)
class MixtureTrace:
    """What the report draws for one mixture: scores over time with the truth on top."""

    mixture_id: str
    label: str
    ebr_db: float
    background_kind: str
    duration_s: float
    truth: tuple[TruthEvent, ...]
    detected: tuple[DetectedEvent, ...]
    timeline: ScoreTimeline


@dataclass
class EvalRun:
    result: EvalResult
    traces: list[MixtureTrace] = field(default_factory=list)


# --- setup -----------------------------------------------------------------------------


def read_data_dir(directory: Path) -> list[Clip]:
    """The clips of a ``--data`` directory; EvalError (one line) when it is unusable."""
    if not directory.exists():
        raise EvalError(f"--data {directory}: no such directory")
    if not directory.is_dir():
        raise EvalError(f"--data {directory}: not a directory")
    try:
        return load_dataset(directory)
    except DatasetError as exc:
        raise EvalError(str(exc)) from exc


def _load_clips(options: EvalOptions) -> list[Clip]:
    directory = options.data_dir
    clips = read_data_dir(directory)
    if options.fold is None:
        return clips
    if not 0 <= options.fold < N_FOLDS:
        raise EvalError(f"--fold {options.fold}: folds are 0 to {N_FOLDS - 1}")
    selected = select_folds(clips, [options.fold])
    if not selected:
        raise EvalError(f"fold {options.fold} of {directory} holds no clips")
    return selected


def node_settings(config: Path | None) -> NodeSettings:
    """The node settings evaluated (``--config`` YAML and ``OUIE_NODE__*``); EvalError."""
    try:
        return load_settings(NodeSettings, config)
    except ConfigError as exc:
        raise EvalError(str(exc)) from exc


def _settings(options: EvalOptions) -> NodeSettings:
    return node_settings(options.config)


def make_classifier(options: EvalOptions, settings: NodeSettings) -> Classifier:
    """The backend's classifier, from the configured classifier settings with the options'
    backend and threads; ``--device cuda`` through the backend's ``device`` setting (the
    onnxruntime backends that have a GPU path)."""
    from ouie.node.classifiers.registry import backend_settings, create_classifier

    try:
        chosen = backend_settings(
            settings.classifier.model_copy(
                update={"backend": options.backend, "threads": options.threads}
            )
        )
        if options.device != "cpu":
            if "device" not in type(chosen).model_fields:
                raise EvalError(
                    f"--device {options.device}: backend {options.backend!r} has no GPU path; "
                    "run it with --device cpu"
                )
            chosen = chosen.model_copy(update={"device": options.device})
        return create_classifier(chosen)
    except (ClassifierError, RuntimeError) as exc:
        raise EvalError(str(exc)) from exc


def device_in_use(model: Classifier, asked: str) -> str:
    """``cuda`` only when the session really runs on CUDA; onnxruntime falls back quietly."""
    providers = getattr(model, "providers", None)
    if asked == "cpu" or not isinstance(providers, list):
        return asked
    if "CUDAExecutionProvider" not in providers:
        raise EvalError(
            f"--device {asked}: the session runs on {', '.join(map(str, providers))}; "
            "onnxruntime could not use CUDA"
        )
    return "cuda"


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("ouie", "numpy", "scipy", "sed_eval", "sed_scores_eval", "onnxruntime"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


# --- passes ----------------------------------------------------------------------------


@dataclass
class _ClipTally:
    background_s: float = 0.0
    background_events: int = 0
    speech_s: float = 0.0
    speech_events: int = 0
    targets: int = 0
    targets_correct: int = 0
    non_targets: int = 0
    non_targets_correct: int = 0
    n_clips: int = 0
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    # per label: target clips, clips where the label came out (any clip), of those correct
    label_clips: dict[str, int] = field(default_factory=dict)
    label_detected: dict[str, int] = field(default_factory=dict)
    label_hits: dict[str, int] = field(default_factory=dict)


@dataclass
class Accumulator:
    """Audio scored, wall time spent, and files skipped, over a whole run."""

    audio_s: float = 0.0
    wall_s: float = 0.0
    skipped: list[str] = field(default_factory=list)


def detected_mixtures(
    mixtures: MixtureSet,
    detector: OfflineDetector,
    acc: Accumulator,
    progress: ProgressSink,
    name: str = "mixtures",
) -> Iterator[tuple[Mixture, OfflineResult] | None]:
    """Each plan rendered and run through ``detector`` (progress advanced, audio and wall
    time added to ``acc``, a clip that cannot be read recorded in ``acc.skipped``); None for a
    plan whose event clip has no sounding part (counted as ``skipped_silent``)."""
    progress.start(name, len(mixtures))
    for plan in mixtures.plans:
        progress.advance()
        try:
            mixture = mixtures.render(plan)
        except AudioInputError as exc:
            acc.skipped.append(str(exc))
            continue
        if mixture is None:
            yield None
            continue
        result = detector.run(mixture.audio, mixture.rate)
        acc.audio_s += mixture.duration_s
        acc.wall_s += result.wall_s
        yield mixture, result


def _clip_pass(
    clips: Sequence[Clip],
    durations: dict[str, float],
    detector: OfflineDetector,
    with_targets: bool,
    acc: Accumulator,
    progress: ProgressSink,
) -> _ClipTally:
    tally = _ClipTally()
    chosen = [c for c in clips if with_targets or not c.is_target]
    progress.start("clips", len(chosen))
    for clip in chosen:
        progress.advance()
        try:
            audio, rate = read_audio(clip.path)
        except AudioInputError as exc:
            acc.skipped.append(str(exc))
            continue
        result = detector.run(audio, rate)
        acc.audio_s += durations[clip.file]
        acc.wall_s += result.wall_s
        tally.n_clips += 1
        found = {str(e.label) for e in result.events}
        if is_speech(clip):
            tally.speech_s += durations[clip.file]
            tally.speech_events += len(result.events)
        elif not clip.is_target:
            tally.background_s += durations[clip.file]
            tally.background_events += len(result.events)
        correct = clip_correct(clip.label, found, clip.is_target)
        if clip.is_target:
            tally.targets += 1
            tally.targets_correct += int(correct)
            tally.label_clips[clip.label] = tally.label_clips.get(clip.label, 0) + 1
            if clip.label in found:
                tally.label_hits[clip.label] = tally.label_hits.get(clip.label, 0) + 1
        else:
            tally.non_targets += 1
            tally.non_targets_correct += int(correct)
        for label in found:
            tally.label_detected[label] = tally.label_detected.get(label, 0) + 1
        row = clip.label if clip.is_target else SPEECH_ROW if is_speech(clip) else NON_TARGET_ROW
        add_confusion(tally.confusion, row, found)
    return tally


@dataclass
class _MixtureTally:
    references: dict[str, list[TruthEvent]] = field(default_factory=dict)
    estimates: dict[str, list[DetectedEvent]] = field(default_factory=dict)
    extended: dict[str, list[DetectedEvent]] = field(default_factory=dict)
    timelines: dict[str, ScoreTimeline] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    ebr: dict[str, float] = field(default_factory=dict)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    traces: list[MixtureTrace] = field(default_factory=list)
    ambience: int = 0
    constructed: int = 0
    skipped_silent: int = 0


def _near(truth: TruthEvent, events: Sequence[DetectedEvent], collar_s: float) -> set[str]:
    return {
        str(e.label)
        for e in events
        if truth.onset_s - collar_s <= e.onset_s <= truth.offset_s + collar_s
    }


def _mixture_pass(
    mixtures: MixtureSet,
    detector: OfflineDetector,
    settings: NodeSettings,
    collar_s: float,
    acc: Accumulator,
    progress: ProgressSink,
) -> _MixtureTally:
    tally = _MixtureTally()
    traced: dict[str, MixtureTrace] = {}
    for detected in detected_mixtures(mixtures, detector, acc, progress):
        if detected is None:
            tally.skipped_silent += 1
            continue
        mixture, result = detected
        key = mixture.mixture_id
        tally.references[key] = list(mixture.events)
        tally.estimates[key] = result.events
        tally.extended[key] = with_activity_offsets(result.events, result.timeline, settings.events)
        tally.timelines[key] = result.timeline
        tally.durations[key] = mixture.duration_s
        tally.ebr[key] = mixture.ebr_db
        if mixture.background_kind == "ambience":
            tally.ambience += 1
        else:
            tally.constructed += 1
        for truth in mixture.events:
            add_confusion(tally.confusion, truth.label, _near(truth, result.events, collar_s))
        # One trace per label (the first TRACES_KEPT labels met), at the highest EBR seen:
        # the report shows what the model does when the event is plainly audible.
        kept = traced.get(mixture.label)
        if (kept is None and len(traced) < TRACES_KEPT) or (
            kept is not None and mixture.ebr_db > kept.ebr_db
        ):
            traced[mixture.label] = _trace(mixture, result.events, result.timeline)
    tally.traces = list(traced.values())
    return tally


def _trace(mixture: Mixture, events: list[DetectedEvent], timeline: ScoreTimeline) -> MixtureTrace:
    return MixtureTrace(
        mixture_id=mixture.mixture_id,
        label=mixture.label,
        ebr_db=mixture.ebr_db,
        background_kind=mixture.background_kind,
        duration_s=mixture.duration_s,
        truth=mixture.events,
        detected=tuple(events),
        timeline=timeline,
    )


def latency_subset(n_plans: int, wanted: int) -> list[int]:
    """Indices spread evenly over the plans (the plans are sorted by file, so by source)."""
    if wanted <= 0 or wanted >= n_plans:
        return list(range(n_plans))
    return sorted({int(i) for i in np.linspace(0, n_plans - 1, wanted).round()})


def _latency_pass(
    mixtures: MixtureSet,
    classifier: Classifier,
    settings: NodeSettings,
    guard: SpeechGuard,
    options: EvalOptions,
    progress: ProgressSink,
) -> LatencySummary:
    picks = latency_subset(len(mixtures.plans), options.latency_mixtures)
    latencies: list[float] = []
    missed = 0
    streamed = 0
    progress.start("streaming latency", len(picks))
    for index in picks:
        progress.advance()
        try:
            mixture = mixtures.render(mixtures.plans[index])
        except AudioInputError:
            continue  # already listed as skipped by the mixture pass
        if mixture is None:
            continue
        events = stream_events(
            mixture.audio, mixture.rate, classifier, settings.events, settings.privacy, guard
        )
        found, lost = match_latencies(mixture.events, events, options.collar_s)
        latencies.extend(found)
        missed += lost
        streamed += 1
    return LatencySummary(
        p50=_round(percentile(latencies, 50)),
        p95=_round(percentile(latencies, 95)),
        n=len(latencies),
        missed=missed,
        n_mixtures=streamed,
        chunk_s=STREAM_CHUNK_S,
    )


# --- assembling the result ------------------------------------------------------------


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _clip_per_class(tally: _ClipTally) -> dict[str, ClassScores]:
    out: dict[str, ClassScores] = {}
    for label in LABELS:
        n = tally.label_clips.get(label, 0)
        hits = tally.label_hits.get(label, 0)
        detected = tally.label_detected.get(label, 0)
        precision = _ratio(hits, detected)
        recall = _ratio(hits, n)
        out[label] = ClassScores(
            f1=_round(_f1(precision, recall) if n else None),
            precision=_round(precision),
            recall=_round(recall),
            n=n,
        )
    return out


def _mixture_per_class(
    scores: DetectionScores, average_precision: dict[str, float]
) -> dict[str, ClassScores]:
    return {
        label: ClassScores(
            f1=_round(c.f1),
            precision=_round(c.precision),
            recall=_round(c.recall),
            n=c.n_ref,
            error_rate=_round(c.error_rate),
            average_precision=_round(average_precision.get(label)),
        )
        for label, c in scores.per_class.items()
    }


def scores_by_ebr(
    references: Mapping[str, list[TruthEvent]],
    estimates: Mapping[str, list[DetectedEvent]],
    ebr: Mapping[str, float],
    collar_s: float,
) -> list[EbrScores]:
    """Event-based F1 and error rate of the mixtures of each EBR (keys: mixture ids)."""
    out: list[EbrScores] = []
    for value in sorted(set(ebr.values())):
        keys = [k for k, v in ebr.items() if v == value]
        scores = event_based_scores({k: references[k] for k in keys}, estimates, LABELS, collar_s)
        n = sum(len(references[k]) for k in keys)
        out.append(
            EbrScores(
                ebr_db=value, event_f1=_round(scores.f1), error_rate=_round(scores.error_rate), n=n
            )
        )
    return out


def run_eval(
    options: EvalOptions,
    classifier: Classifier | None = None,
    progress: ProgressSink | None = None,
) -> EvalRun:
    """Evaluate ``classifier`` (or the ``options.backend`` one) on ``options.data_dir``."""
    sink = progress or NoProgress()
    clips = _load_clips(options)
    acc = Accumulator()
    durations: dict[str, float] = {}
    usable: list[Clip] = []
    for clip in clips:
        try:
            durations[clip.file] = clip_duration(clip.path)
        except AudioInputError as exc:
            acc.skipped.append(str(exc))
            continue
        usable.append(clip)
    if not usable:
        raise EvalError(f"--data {options.data_dir}: no readable audio in the selection")
    settings = _settings(options)
    model = classifier if classifier is not None else make_classifier(options, settings)
    device = device_in_use(model, options.device)
    backend = options.backend
    guard = SpeechGuard(settings.privacy)
    detector = OfflineDetector(model, settings.events, settings.privacy, guard)

    with_targets = options.mode in ("clips", "both")
    clip_tally = _clip_pass(usable, durations, detector, with_targets, acc, sink)

    spec = MixtureSpec(seed=options.seed, duration_s=options.mixture_duration_s)
    mixture_tally: _MixtureTally | None = None
    latency: LatencySummary | None = None
    mixtures: MixtureSet | None = None
    if options.mode in ("mixtures", "both"):
        mixtures = MixtureSet(usable, durations, spec, ClipCache(spec.rate))
        mixture_tally = _mixture_pass(mixtures, detector, settings, options.collar_s, acc, sink)
        latency = _latency_pass(mixtures, model, settings, guard, options, sink)

    result = _assemble(
        options, backend, model, device, settings, clip_tally, mixture_tally, mixtures, latency, acc
    )
    return EvalRun(result, mixture_tally.traces if mixture_tally else [])


def _assemble(
    options: EvalOptions,
    backend: str,
    model: Classifier,
    device: str,
    settings: NodeSettings,
    clips: _ClipTally,
    mix: _MixtureTally | None,
    mixtures: MixtureSet | None,
    latency: LatencySummary | None,
    acc: Accumulator,
) -> EvalResult:
    with_targets = options.mode in ("clips", "both")
    event = segment = None
    per_class: dict[str, ClassScores]
    by_ebr: list[EbrScores] = []
    ap_mean = psds = None
    pr_curves: dict[str, PrCurve] = {}
    summary: MixtureSummary | None = None
    if mix is not None and mixtures is not None and mix.references:
        event = event_based_scores(mix.references, mix.estimates, LABELS, options.collar_s)
        segment = segment_based_scores(mix.references, mix.extended, mix.durations, LABELS)
        free = threshold_free(mix.timelines, mix.references, mix.durations, LABELS)
        ap_mean, psds = free.mean_average_precision, free.psds
        pr_curves = {k: PrCurve(precision=p, recall=r) for k, (p, r) in free.pr_curves.items()}
        per_class = _mixture_per_class(event, free.average_precision)
        by_ebr = scores_by_ebr(mix.references, mix.estimates, mix.ebr, options.collar_s)
    else:
        per_class = _clip_per_class(clips)
    if mix is not None and mixtures is not None:
        summary = MixtureSummary(
            protocol=PROTOCOL,
            n=len(mix.references),
            duration_s=mixtures.spec.duration_s,
            rate=mixtures.spec.rate,
            ebrs_db=list(mixtures.spec.ebrs_db),
            seed=mixtures.spec.seed,
            ambience=mix.ambience,
            constructed=mix.constructed,
            ambience_files=[c.file for c in mixtures.sources.ambience],
            skipped_silent=mix.skipped_silent,
        )
    confusion_from_mixtures = not with_targets and mix is not None
    confusion = mix.confusion if confusion_from_mixtures and mix is not None else clips.confusion
    n_mixtures = len(mix.references) if mix else 0
    return EvalResult(
        backend=backend,
        model_id=model.model_id,
        data_dir=str(options.data_dir),
        mode=options.mode,
        fold=options.fold,
        seed=options.seed,
        collar_s=options.collar_s,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        n_files=clips.n_clips + n_mixtures,
        n_clips=clips.n_clips,
        n_mixtures=n_mixtures,
        event_f1=_round(event.f1) if event else None,
        event_precision=_round(event.precision) if event else None,
        event_recall=_round(event.recall) if event else None,
        error_rate=_round(event.error_rate) if event else None,
        event_f1_macro=_round(event.f1_macro) if event else None,
        error_rate_macro=_round(event.error_rate_macro) if event else None,
        segment_f1=_round(segment.f1) if segment else None,
        segment_error_rate=_round(segment.error_rate) if segment else None,
        mean_average_precision=_round(ap_mean),
        psds=_round(psds),
        psds_params={**PSDS_PARAMS, "min_class_events": float(PSDS_MIN_CLASS_EVENTS)},
        false_alarms_per_hour=_round(
            false_alarms_per_hour(clips.background_events, clips.background_s)
        ),
        background_hours=round(clips.background_s / 3600, 4),
        background_events=clips.background_events,
        speech_false_alarms_per_hour=_round(
            false_alarms_per_hour(clips.speech_events, clips.speech_s)
        ),
        speech_hours=round(clips.speech_s / 3600, 4),
        speech_events=clips.speech_events,
        latency_s=latency,
        per_class=per_class,
        per_class_basis="mixtures" if event is not None else "clips",
        by_ebr=by_ebr,
        clip_accuracy=_round(
            _ratio(
                clips.targets_correct + clips.non_targets_correct, clips.targets + clips.non_targets
            )
        )
        if with_targets
        else None,
        clip_accuracy_targets=_round(_ratio(clips.targets_correct, clips.targets)),
        clip_accuracy_non_targets=_round(_ratio(clips.non_targets_correct, clips.non_targets)),
        confusion=confusion,
        confusion_basis="mixtures" if confusion_from_mixtures else "clips",
        pr_curves=pr_curves,
        localisation=None,
        mixtures=summary,
        timing=Timing(
            audio_s=round(acc.audio_s, 2),
            wall_s=round(acc.wall_s, 3),
            x_realtime=round(acc.audio_s / acc.wall_s, 1) if acc.wall_s > 0 else None,
            device=device,
        ),
        thresholds={label.value: settings.events.threshold(label) for label in EVENT_LABELS},
        versions=package_versions(),
        skipped_files=acc.skipped,
    )
