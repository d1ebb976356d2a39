"""``ouie eval --split source``: leave one ``source_repo`` out (docs/eval.md).

The dev folds share recording sources, so a model tested on one fold has heard the same
microphones, rooms and editors in training. Here each ``source_repo`` S in turn is the
held-out set, scored by a classifier that never saw S: an AudioSet tagger as configured, or
for a trained backend the build (``ouie.eval.builds``) whose ``excluded_sources`` lists S.

Per source, in one read of its audio:

1. clips: every clip through ``detect_offline`` (the node's event logic at the deployed
   thresholds); the classifier's window scores are kept, each clip summed up by the
   maximum over its windows per class (``ouie.eval.clip_recall``);
2. mixtures (modes ``mixtures``/``both``): S's target clips as events in the mixture
   protocol of ``ouie.eval.mixtures``, on S's own backgrounds when it has any, else on the
   long ambience of the whole data.

Figures are then computed per source and pooled over every held-out source (pooled, not
averaged).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from ouie.config.node import EventSettings, NodeSettings
from ouie.core.labels import EVENT_LABELS
from ouie.eval.audio import ClipCache
from ouie.eval.builds import Build, BuildError, build_for, load_builds
from ouie.eval.clip_recall import FALSE_CLIP_RATES, SCORE_DIGITS
from ouie.eval.dataset import Clip
from ouie.eval.detection import OfflineDetector
from ouie.eval.metrics import DEFAULT_COLLAR_S
from ouie.eval.mixtures import (
    AMBIENCE_LABELS,
    MIXTURE_RATE,
    MixtureSet,
    MixtureSpec,
    background_sources,
    is_ambience,
    is_speech,
)
from ouie.eval.result import EvalMode, Timing
from ouie.eval.runner import (
    DEFAULT_SEED,
    LABELS,
    Accumulator,
    EvalError,
    EvalOptions,
    NoProgress,
    ProgressSink,
    detected_mixtures,
    device_in_use,
    make_classifier,
    node_settings,
    package_versions,
)
from ouie.eval.source_data import Item, SourceData, group_by_source, load_items
from ouie.eval.source_figures import (
    BackgroundFrom,
    ClipOutcome,
    MixtureTally,
    clip_recall_figures,
    deployed_figures,
    mixture_figures,
    pool_of,
    row_of,
    source_counts,
)
from ouie.eval.source_result import OverallBlock, SourceBlock, SourceSplitResult
from ouie.node.audio_io import AudioInputError, read_audio
from ouie.node.classifiers.base import Classifier
from ouie.node.tuned import with_tuned_defaults
from ouie.privacy.speech_guard import SpeechGuard

#: Backends trained on ouie's datasets: their figures are source-disjoint only with builds
#: that left the held-out source out. Every other backend (the AudioSet taggers) is zero-shot.
TRAINED_BACKENDS = frozenset({"compact", "cascade", "auto"})  # cascade, auto: compact gates

FloatArray = npt.NDArray[np.float32]
ClassifierFactory = Callable[[EvalOptions, NodeSettings], Classifier]


@dataclass(frozen=True)
class SourceSplitOptions:
    data_dirs: tuple[Path, ...]
    backend: str
    builds: Path | None = None
    mode: EvalMode = "both"
    device: Literal["cpu", "cuda"] = "cpu"
    seed: int = DEFAULT_SEED
    collar_s: float = DEFAULT_COLLAR_S
    config: Path | None = None
    threads: int = 1
    mixture_duration_s: float = 30.0


def compact_needs_builds(backend: str) -> str:
    return (
        f"--backend {backend} needs --builds DIR (models trained without the held-out "
        "source): the bundled model was trained on these sources, so its figures would not "
        "be source-disjoint"
    )


def check_options(options: SourceSplitOptions) -> list[Build] | None:
    """The builds to use (None for a zero-shot backend); EvalError for a bad combination."""
    if not options.data_dirs:
        raise EvalError("--data DIR is required (a folder with labels.csv)")
    trained = options.backend in TRAINED_BACKENDS
    if trained and options.builds is None:
        raise EvalError(compact_needs_builds(options.backend))
    if not trained and options.builds is not None:
        raise EvalError(
            f"--builds is for trained backends ({', '.join(sorted(TRAINED_BACKENDS))}); "
            f"{options.backend} was not trained on these datasets and runs as configured"
        )
    if options.builds is None:
        return None
    try:
        return load_builds(options.builds)
    except BuildError as exc:
        raise EvalError(str(exc)) from exc


# --- per-source classifier ----------------------------------------------------------------


@dataclass(frozen=True)
class SourceModel:
    classifier: Classifier
    events: EventSettings
    build: Build | None


class ModelChooser:
    """The classifier for each held-out source; one instance per build, made on first use."""

    def __init__(
        self,
        options: SourceSplitOptions,
        settings: NodeSettings,
        builds: list[Build] | None,
        make: ClassifierFactory,
    ) -> None:
        self.options = options
        self.settings = settings
        self.builds = builds
        self.make = make
        self._made: dict[str, Classifier] = {}

    def eval_options(self) -> EvalOptions:
        o = self.options
        return EvalOptions(
            data_dir=o.data_dirs[0], backend=o.backend, device=o.device, threads=o.threads
        )

    def for_source(self, source: str) -> SourceModel | str:
        """The source's model, or the reason it is skipped."""
        if self.builds is None:
            if "" not in self._made:
                self._made[""] = self.make(self.eval_options(), self.settings)
            return SourceModel(self._made[""], self.settings.events, None)
        build = build_for(source, self.builds)
        if build is None:
            return f"no build in {self.options.builds} lists it in excluded_sources"
        if build.name not in self._made:
            classifier = self.settings.classifier.model_copy(update={"model_dir": build.path})
            settings = self.settings.model_copy(update={"classifier": classifier})
            self._made[build.name] = self.make(self.eval_options(), settings)
        events = self.settings.events
        if build.info.thresholds:
            merged = {**events.thresholds, **build.info.thresholds}
            events = events.model_copy(update={"thresholds": merged})
        return SourceModel(self._made[build.name], events, build)


def effective_thresholds(events: EventSettings, model_id: str) -> dict[str, float]:
    """The thresholds the event stage really uses (configured over the tuned defaults)."""
    merged = with_tuned_defaults(events, model_id)
    return {label.value: merged.threshold(label) for label in EVENT_LABELS}


# --- passes -----------------------------------------------------------------------------


def clip_max_scores(rows: FloatArray) -> tuple[float, ...]:
    """Per class, the highest window score of a clip (0 for a clip with no window)."""
    if rows.size == 0:
        return tuple(0.0 for _ in LABELS)
    return tuple(round(float(v), SCORE_DIGITS) for v in np.max(rows, axis=0))


def keep_for_mixtures(clip: Clip) -> bool:
    """Clips the source's mixtures may use: its targets and non-speech non-targets."""
    return clip.is_target or not is_speech(clip)


Keep = Callable[[Clip, FloatArray, int], None]


def clip_pass(
    source: SourceData,
    detector: OfflineDetector,
    acc: Accumulator,
    progress: ProgressSink,
    keep: Keep | None = None,
) -> list[ClipOutcome]:
    """Every clip of the source through ``detect_offline``, each file read once; ``keep``
    gets each decoded clip (for the mixtures, so that they need not read it again)."""
    outcomes: list[ClipOutcome] = []
    progress.start(f"{source.source}: clips", len(source.items))
    for item in source.items:
        progress.advance()
        try:
            audio, rate = read_audio(item.clip.path)
        except AudioInputError as exc:
            acc.skipped.append(str(exc))
            continue
        result = detector.run(audio, rate)
        acc.audio_s += item.duration_s
        acc.wall_s += result.wall_s
        if keep is not None:
            keep(item.clip, audio, rate)
        outcomes.append(
            ClipOutcome(
                item,
                clip_max_scores(result.timeline.scores),
                tuple(str(e.label) for e in result.events),
            )
        )
    return outcomes


def own_backgrounds(source: SourceData) -> bool:
    """Whether the source has background material of its own (long ambience or non-target,
    non-speech clips) for its mixtures."""
    found = background_sources(
        [i.clip for i in source.items], {i.clip.file: i.duration_s for i in source.items}
    )
    return bool(found.ambience or found.pool)


def mixture_set(
    source: SourceData,
    data_ambience: Sequence[Item],
    spec: MixtureSpec,
    cache: ClipCache,
    shared: ClipCache,
    acc: Accumulator,
) -> tuple[MixtureSet, BackgroundFrom]:
    """The source's mixtures: on its own backgrounds (long ambience, or its non-target clips
    over generated traffic) when it has any; else on the whole data's long ambience (every
    mixture); else on generated traffic noise alone."""
    own = [item.clip for item in source.items]
    durations = {item.clip.file: item.duration_s for item in source.items}
    if own_backgrounds(source):
        return MixtureSet(own, durations, spec, cache), "source"
    targets = [c for c in own if c.is_target]
    ambience: list[Clip] = []
    for item in data_ambience:  # kept by the clip passes, else read here once per run
        try:
            cache.put(item.clip.path, shared.get(item.clip.path), shared.rate)
        except AudioInputError as exc:
            acc.skipped.append(str(exc))
            continue
        durations[item.clip.file] = item.duration_s
        ambience.append(item.clip)
    if not ambience:
        return MixtureSet(targets, durations, spec, cache), "generated"
    return (
        MixtureSet(targets + ambience, durations, replace(spec, ambience_share=1.0), cache),
        "data_ambience",
    )


def mixture_pass(
    source: str,
    mixtures: MixtureSet,
    background_from: BackgroundFrom,
    detector: OfflineDetector,
    acc: Accumulator,
    progress: ProgressSink,
) -> MixtureTally:
    tally = MixtureTally()
    for detected in detected_mixtures(mixtures, detector, acc, progress, f"{source}: mixtures"):
        if detected is None:
            tally.skipped_silent += 1
            continue
        mixture, result = detected
        key = f"{source}#{mixture.mixture_id}"
        tally.references[key] = list(mixture.events)
        tally.estimates[key] = result.events
        tally.ebr[key] = mixture.ebr_db
        tally.background_from[background_from] += 1
        if mixture.background_kind == "ambience":
            tally.ambience += 1
        else:
            tally.constructed += 1
    return tally


# --- the run ----------------------------------------------------------------------------


@dataclass
class _Evaluated:
    data: SourceData
    model: SourceModel
    outcomes: list[ClipOutcome]
    mixtures: MixtureTally | None


def run_source_split(
    options: SourceSplitOptions,
    make: ClassifierFactory | None = None,
    progress: ProgressSink | None = None,
) -> SourceSplitResult:
    """Leave each ``source_repo`` of ``options.data_dirs`` out in turn (docs/eval.md);
    ``make`` creates the classifiers (default: ``make_classifier``, as ``ouie eval`` does)."""
    sink = progress or NoProgress()
    builds = check_options(options)
    items, listed, skipped_files = load_items(options.data_dirs)
    if not items:
        raise EvalError("--data: no readable audio in the data")
    sources = group_by_source(items, listed)
    settings = node_settings(options.config)
    guard = SpeechGuard(settings.privacy)
    chooser = ModelChooser(options, settings, builds, make or make_classifier)
    acc = Accumulator(skipped=skipped_files)
    with_mixtures = options.mode in ("mixtures", "both")
    spec = MixtureSpec(seed=options.seed, duration_s=options.mixture_duration_s)
    data_ambience = sorted(
        (i for i in items if is_ambience(i.clip, i.duration_s)), key=lambda i: str(i.clip.path)
    )
    shared = ClipCache(MIXTURE_RATE)  # the data's long ambience, for sources without any
    fallback = {
        d.source
        for d in sources
        if with_mixtures and any(i.clip.is_target for i in d.items) and not own_backgrounds(d)
    }
    shared_paths = {i.clip.path for i in data_ambience} if fallback else set()
    evaluated: list[_Evaluated] = []
    deferred: list[tuple[SourceData, _Evaluated, OfflineDetector, ClipCache]] = []
    skipped: dict[str, str] = {}
    devices: set[str] = set()
    for data in sources:
        if not data.items:
            skipped[data.source] = "no readable audio"
            continue
        model = chooser.for_source(data.source)
        if isinstance(model, str):
            skipped[data.source] = model
            continue
        devices.add(device_in_use(model.classifier, options.device))
        detector = OfflineDetector(model.classifier, model.events, settings.privacy, guard)
        has_targets = any(i.clip.is_target for i in data.items)
        cache = ClipCache(MIXTURE_RATE) if with_mixtures and has_targets else None

        def keep(clip: Clip, audio: FloatArray, rate: int, cache: ClipCache | None = cache) -> None:
            if cache is not None and keep_for_mixtures(clip):
                cache.put(clip.path, audio, rate)
            if clip.path in shared_paths:
                shared.put(clip.path, audio, rate)

        outcomes = clip_pass(data, detector, acc, sink, keep)
        entry = _Evaluated(data, model, outcomes, None)
        evaluated.append(entry)
        if cache is None:
            continue
        decoded = replace(data, items=tuple(o.item for o in outcomes))
        if data.source in fallback:  # after every clip pass has kept the data's ambience
            deferred.append((decoded, entry, detector, cache))
            continue
        mixtures, background = mixture_set(decoded, data_ambience, spec, cache, shared, acc)
        entry.mixtures = mixture_pass(data.source, mixtures, background, detector, acc, sink)
    for decoded, entry, detector, cache in deferred:
        mixtures, background = mixture_set(decoded, data_ambience, spec, cache, shared, acc)
        entry.mixtures = mixture_pass(decoded.source, mixtures, background, detector, acc, sink)
    if not evaluated:
        reasons = "; ".join(f"{s}: {r}" for s, r in skipped.items())
        raise EvalError(f"no source could be evaluated ({reasons})")
    return _assemble(options, sources, evaluated, skipped, acc, devices)


def is_street(outcome: ClipOutcome) -> bool:
    """Targets, and the non-targets a street sensor hears all day: background, ambience,
    crowd, traffic and speech (not the hard negatives: door knocks, 'other' clips, ESC-50)."""
    clip = outcome.item.clip
    return clip.is_target or clip.label in AMBIENCE_LABELS or is_speech(clip)


def _assemble(
    options: SourceSplitOptions,
    sources: Sequence[SourceData],
    evaluated: Sequence[_Evaluated],
    skipped: Mapping[str, str],
    acc: Accumulator,
    devices: set[str],
) -> SourceSplitResult:
    every = [o for e in evaluated for o in e.outcomes]
    pooled = pool_of(every)
    # per source without both kinds of clip: recall / false-clip rate at the pooled thresholds
    overall_recall = clip_recall_figures(pooled)
    pooled_mixtures: MixtureTally | None = None
    blocks: dict[str, SourceBlock] = {}
    for e in evaluated:
        if e.mixtures is not None:
            pooled_mixtures = pooled_mixtures or MixtureTally()
            pooled_mixtures.merge(e.mixtures)
        n, targets, non_targets, speech = source_counts(e.outcomes)
        model_id = e.model.classifier.model_id
        blocks[e.data.source] = SourceBlock(
            source=e.data.source,
            data_dirs=e.data.data_dirs,
            status="evaluated",
            skip_reason=None,
            model_id=model_id,
            build=e.model.build.name if e.model.build else None,
            thresholds_from="build"
            if e.model.build is not None and e.model.build.info.thresholds
            else "config",
            thresholds=effective_thresholds(e.model.events, model_id),
            n_clips=n,
            n_targets=targets,
            n_non_targets=non_targets,
            n_speech=speech,
            clip_recall=clip_recall_figures(pool_of(e.outcomes), overall_recall),
            deployed=deployed_figures(e.outcomes),
            mixtures=mixture_figures(e.mixtures, options.collar_s),
        )
    for data in sources:
        if data.source in skipped:
            clips = [i.clip for i in data.items]
            blocks[data.source] = SourceBlock(
                source=data.source,
                data_dirs=data.data_dirs,
                status="skipped",
                skip_reason=skipped[data.source],
                model_id=None,
                build=None,
                thresholds_from=None,
                thresholds={},
                n_clips=data.listed,
                n_targets=sum(1 for c in clips if c.is_target),
                n_non_targets=sum(1 for c in clips if not c.is_target),
                n_speech=sum(1 for c in clips if is_speech(c)),
                clip_recall=None,
                deployed=None,
                mixtures=None,
            )
    n, targets, non_targets, speech = source_counts(every)
    overall = OverallBlock(
        sources_evaluated=[e.data.source for e in evaluated],
        sources_skipped=sorted(skipped),
        n_clips=n,
        n_targets=targets,
        n_non_targets=non_targets,
        n_speech=speech,
        clip_recall=overall_recall,
        street_clip_recall=clip_recall_figures(pool_of([o for o in every if is_street(o)])),
        deployed=deployed_figures(every),
        mixtures=mixture_figures(pooled_mixtures, options.collar_s),
    )
    return SourceSplitResult(
        backend=options.backend,
        builds_dir=str(options.builds) if options.builds is not None else None,
        data_dirs=[str(d) for d in options.data_dirs],
        mode=options.mode,
        seed=options.seed,
        collar_s=options.collar_s,
        false_clip_rates=list(FALSE_CLIP_RATES),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        model_ids={e.data.source: e.model.classifier.model_id for e in evaluated},
        sources=[blocks[data.source] for data in sources],
        overall=overall,
        clips=[row_of(o) for o in every],
        timing=Timing(
            audio_s=round(acc.audio_s, 2),
            wall_s=round(acc.wall_s, 3),
            x_realtime=round(acc.audio_s / acc.wall_s, 1) if acc.wall_s > 0 else None,
            device="cuda" if "cuda" in devices else options.device,
        ),
        versions=package_versions(),
        skipped_files=list(dict.fromkeys(acc.skipped)),  # a file once, however often met
    )
