"""Figures of ``ouie eval --split source`` from clip outcomes and mixture tallies.

Per held-out source and pooled over every source (docs/eval.md, "Source-disjoint
validation"): clip recall at fixed false-clip rates (``ouie.eval.clip_recall``), figures at
the deployed thresholds, and mixture event F1 per EBR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ouie.eval.clip_recall import (
    FALSE_CLIP_RATES,
    PER_CLASS_RATE,
    ClassPoint,
    ClipPool,
    OperatingPoint,
    at_given_thresholds,
    at_threshold,
    class_recall,
    class_recall_at_rate,
    clip_pool,
    recall_at_rate,
)
from ouie.eval.metrics import event_based_scores, false_alarms_per_hour
from ouie.eval.mixtures import TruthEvent, is_speech
from ouie.eval.runner import LABELS, scores_by_ebr
from ouie.eval.source_data import Item
from ouie.eval.source_result import (
    ClassRecall,
    ClipRecall,
    ClipScoreRow,
    DeployedScores,
    RecallPoint,
    SingleThresholdPoint,
    SingleThresholdRecall,
    SourceMixtures,
)
from ouie.node.pipeline import DetectedEvent

BackgroundFrom = Literal["source", "data_ambience", "generated"]


@dataclass(frozen=True)
class ClipOutcome:
    item: Item
    scores: tuple[float, ...]  # per class, max over windows, rounded to SCORE_DIGITS
    events: tuple[str, ...]  # labels of the events at the deployed thresholds

    @property
    def is_target(self) -> bool:
        return self.item.clip.is_target

    @property
    def is_speech(self) -> bool:
        return is_speech(self.item.clip)


@dataclass
class MixtureTally:
    references: dict[str, list[TruthEvent]] = field(default_factory=dict)
    estimates: dict[str, list[DetectedEvent]] = field(default_factory=dict)
    ebr: dict[str, float] = field(default_factory=dict)
    background_from: dict[BackgroundFrom, int] = field(
        default_factory=lambda: {"source": 0, "data_ambience": 0, "generated": 0}
    )
    ambience: int = 0
    constructed: int = 0
    skipped_silent: int = 0

    def merge(self, other: MixtureTally) -> None:
        self.references.update(other.references)
        self.estimates.update(other.estimates)
        self.ebr.update(other.ebr)
        for key, count in other.background_from.items():
            self.background_from[key] += count
        self.ambience += other.ambience
        self.constructed += other.constructed
        self.skipped_silent += other.skipped_silent


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _class_recall(found: int, n: int) -> ClassRecall:
    return ClassRecall(found=found, n=n, recall=_round(found / n) if n else None)


def pool_of(outcomes: Sequence[ClipOutcome]) -> ClipPool:
    return clip_pool(
        [(o.item.clip.label, o.is_target, o.scores) for o in outcomes],
        LABELS,
        [o.item.source for o in outcomes],
    )


def _point(point: ClassPoint) -> RecallPoint:
    return RecallPoint(
        max_false_clip_rate=point.max_false_clip_rate,
        per_label_false_rate=round(point.per_label_false_rate, 6),
        thresholds=point.thresholds,
        recall=_round(point.recall),
        found=point.found,
        n_targets=point.n_targets,
        false_clip_rate=_round(point.false_clip_rate),
        false_clips=point.false_clips,
        n_non_targets=point.n_non_targets,
        false_clips_by_label=point.false_clips_by_label,
        balanced_recall=_round(point.balanced_recall),
        balanced_cells=point.balanced_cells,
    )


def _single_point(point: OperatingPoint) -> SingleThresholdPoint:
    return SingleThresholdPoint(
        max_false_clip_rate=point.max_false_clip_rate,
        threshold=point.threshold,
        recall=_round(point.recall),
        found=point.found,
        n_targets=point.n_targets,
        false_clip_rate=_round(point.false_clip_rate),
        false_clips=point.false_clips,
        n_non_targets=point.n_non_targets,
    )


def _single_threshold(
    pool: ClipPool, pooled: SingleThresholdRecall | None, rates: Sequence[float]
) -> SingleThresholdRecall:
    """One threshold for every class: the pool's own points, or the pooled thresholds."""
    if pooled is None:
        points = [recall_at_rate(pool, rate) for rate in rates]
    else:
        given = {p.max_false_clip_rate: p.threshold for p in pooled.points}
        points = [at_threshold(pool, given.get(rate), rate) for rate in rates]
    at_class_rate = next((p for p in points if p.max_false_clip_rate == PER_CLASS_RATE), None)
    threshold = (at_class_rate or recall_at_rate(pool, PER_CLASS_RATE)).threshold
    return SingleThresholdRecall(
        points=[_single_point(p) for p in points],
        per_class={
            label: _class_recall(found, n)
            for label, (found, n) in class_recall(pool, threshold).items()
        },
    )


def clip_recall_figures(
    pool: ClipPool,
    pooled: ClipRecall | None = None,
    rates: Sequence[float] = FALSE_CLIP_RATES,
) -> ClipRecall | None:
    """Recall at the false-clip rates with per-class operating points (and, secondary, one
    threshold for every class): on the pool's own scores when it holds targets and
    non-targets; otherwise at the ``pooled`` figures' thresholds when given."""
    own = pool.n_targets > 0 and pool.n_non_targets > 0
    if not own and (pooled is None or pool.n_targets + pool.n_non_targets == 0):
        return None

    def point_at(rate: float) -> ClassPoint:
        if own:
            point = class_recall_at_rate(pool, rate)
            assert point is not None  # the pool has non-targets
            return point
        assert pooled is not None
        ref = next((p for p in pooled.points if p.max_false_clip_rate == rate), None)
        if ref is None:
            raise ValueError(f"the pooled figures have no point at rate {rate}")
        return at_given_thresholds(pool, ref.thresholds, rate, ref.per_label_false_rate)

    points = [point_at(rate) for rate in rates]
    at_class_rate = next((p for p in points if p.max_false_clip_rate == PER_CLASS_RATE), None)
    found = (at_class_rate or point_at(PER_CLASS_RATE)).found_by_label
    return ClipRecall(
        basis="own" if own else "pooled_thresholds",
        points=[_point(p) for p in points],
        per_class_rate=PER_CLASS_RATE,
        per_class={label: _class_recall(f, n) for label, (f, n) in found.items()},
        single_threshold=_single_threshold(
            pool, None if own or pooled is None else pooled.single_threshold, rates
        ),
    )


def deployed_figures(outcomes: Sequence[ClipOutcome]) -> DeployedScores | None:
    """Figures at the deployed thresholds, from the events of ``detect_offline``."""
    if not outcomes:
        return None
    targets = [o for o in outcomes if o.is_target]
    non_targets = [o for o in outcomes if not o.is_target]
    background = [o for o in non_targets if not o.is_speech]
    speech = [o for o in non_targets if o.is_speech]
    background_s = sum(o.item.duration_s for o in background)
    background_events = sum(len(o.events) for o in background)
    per_class = {
        label: _class_recall(
            sum(1 for o in targets if o.item.clip.label == label and label in o.events),
            sum(1 for o in targets if o.item.clip.label == label),
        )
        for label in LABELS
    }
    return DeployedScores(
        targets_found=sum(1 for o in targets if o.item.clip.label in o.events),
        targets=len(targets),
        per_class=per_class,
        non_target_clips_with_event=sum(1 for o in non_targets if o.events),
        non_target_clips=len(non_targets),
        background_hours=round(background_s / 3600, 4),
        background_events=background_events,
        false_alarms_per_hour=_round(false_alarms_per_hour(background_events, background_s)),
        speech_clips=len(speech),
        speech_clips_with_event=sum(1 for o in speech if o.events),
        speech_events=sum(len(o.events) for o in speech),
    )


def mixture_figures(tally: MixtureTally | None, collar_s: float) -> SourceMixtures | None:
    if tally is None:
        return None
    event = event_based_scores(tally.references, tally.estimates, LABELS, collar_s)
    by_ebr = scores_by_ebr(tally.references, tally.estimates, tally.ebr, collar_s)
    return SourceMixtures(
        n=len(tally.references),
        source_background=tally.background_from["source"],
        data_ambience_background=tally.background_from["data_ambience"],
        generated_background=tally.background_from["generated"],
        ambience=tally.ambience,
        constructed=tally.constructed,
        skipped_silent=tally.skipped_silent,
        event_f1=_round(event.f1) if tally.references else None,
        error_rate=_round(event.error_rate) if tally.references else None,
        by_ebr=by_ebr,
    )


def source_counts(outcomes: Sequence[ClipOutcome]) -> tuple[int, int, int, int]:
    targets = sum(1 for o in outcomes if o.is_target)
    speech = sum(1 for o in outcomes if o.is_speech)
    return len(outcomes), targets, len(outcomes) - targets, speech


def row_of(outcome: ClipOutcome) -> ClipScoreRow:
    item = outcome.item
    return ClipScoreRow(
        data_dir=str(item.data_dir),
        file=item.clip.file,
        source=item.source,
        label=item.clip.label,
        duration_s=round(item.duration_s, 4),
        scores=dict(zip(LABELS, outcome.scores, strict=True)),
        events=list(outcome.events),
    )
