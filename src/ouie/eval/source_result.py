"""The ``ouie eval --split source`` JSON: one pydantic model, documented in docs/eval.md.

Leave one ``source_repo`` out: figures per held-out source and pooled over all of them,
plus every clip's class scores so that pooled figures and ensembles can be recomputed
offline. A figure that cannot be measured (no targets, no non-targets, no speech, a mode
without mixtures) is ``null``, never 0. Unknown keys are refused when reading it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ouie.eval.metrics import false_alarms_per_hour
from ouie.eval.mixtures import AMBIENCE_LABELS
from ouie.eval.result import EbrScores, EvalMode, Timing

SOURCE_SPLIT_SCHEMA_VERSION = 2


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecallPoint(_Strict):
    max_false_clip_rate: float = Field(description="the union false-clip rate allowed (0.01, …)")
    per_label_false_rate: float = Field(description="q: each label's own false-clip allowance")
    thresholds: dict[str, float] = Field(description="per label, the threshold t_c(q) used")
    recall: float | None = Field(description="found / n_targets; null without targets")
    found: int = Field(description="target clips whose own class score is ≥ its threshold")
    n_targets: int
    false_clip_rate: float | None = Field(description="false_clips / n_non_targets")
    false_clips: int = Field(description="non-target clips with any class score ≥ its t_c")
    n_non_targets: int
    false_clips_by_label: dict[str, int] = Field(
        description="per label, non-target clips whose score of that label is ≥ its t_c"
    )
    balanced_recall: float | None = Field(
        default=None,
        description="at the same thresholds, the mean recall over the (source, label) cells "
        "of at least 5 target clips: every collection weighs the same; null without such a cell",
    )
    balanced_cells: int = Field(default=0, description="the cells in balanced_recall")


class ClassRecall(_Strict):
    found: int
    n: int
    recall: float | None


class SingleThresholdPoint(_Strict):
    max_false_clip_rate: float = Field(description="the false-clip rate allowed (0.01, …)")
    threshold: float | None = Field(description="threshold used; null: none qualifies")
    recall: float | None = Field(description="found / n_targets; null without targets")
    found: int
    n_targets: int
    false_clip_rate: float | None = Field(description="false_clips / n_non_targets")
    false_clips: int
    n_non_targets: int


class SingleThresholdRecall(_Strict):
    points: list[SingleThresholdPoint]
    per_class: dict[str, ClassRecall]


class ClipRecall(_Strict):
    basis: Literal["own", "pooled_thresholds"]
    points: list[RecallPoint] = Field(description="per-class operating points, one per rate")
    per_class_rate: float = Field(description="false-clip rate of the per-class recall")
    per_class: dict[str, ClassRecall]
    single_threshold: SingleThresholdRecall = Field(
        description="the same with one threshold for every class (schema 1's figure)"
    )


class DeployedScores(_Strict):
    targets_found: int
    targets: int
    per_class: dict[str, ClassRecall]
    non_target_clips_with_event: int
    non_target_clips: int
    background_hours: float
    background_events: int
    false_alarms_per_hour: float | None
    speech_clips: int
    speech_clips_with_event: int
    speech_events: int


class SourceMixtures(_Strict):
    n: int = Field(description="mixtures scored")
    source_background: int = Field(description="mixtures on the source's own backgrounds")
    data_ambience_background: int = Field(
        description="mixtures on the long ambience of the whole data (maybe seen in training)"
    )
    generated_background: int = Field(description="mixtures on generated traffic noise only")
    ambience: int
    constructed: int
    skipped_silent: int
    event_f1: float | None
    error_rate: float | None
    by_ebr: list[EbrScores]


class SourceBlock(_Strict):
    source: str
    data_dirs: list[str]
    status: Literal["evaluated", "skipped"]
    skip_reason: str | None
    model_id: str | None
    build: str | None
    thresholds_from: Literal["build", "config"] | None
    thresholds: dict[str, float]
    n_clips: int
    n_targets: int
    n_non_targets: int
    n_speech: int
    clip_recall: ClipRecall | None
    deployed: DeployedScores | None
    mixtures: SourceMixtures | None


class OverallBlock(_Strict):
    sources_evaluated: list[str]
    sources_skipped: list[str]
    n_clips: int
    n_targets: int
    n_non_targets: int
    n_speech: int
    clip_recall: ClipRecall | None
    street_clip_recall: ClipRecall | None = Field(
        default=None,
        description="clip_recall with only street non-targets (background, ambience, crowd, "
        "traffic, speech): the negatives a street sensor hears all day",
    )
    deployed: DeployedScores | None
    mixtures: SourceMixtures | None


class ClipScoreRow(_Strict):
    data_dir: str
    file: str
    source: str
    label: str
    duration_s: float
    scores: dict[str, float] = Field(description="per class: the maximum over the windows")
    events: list[str] = Field(description="labels of the events at the deployed thresholds")


class SourceSplitResult(_Strict):
    schema_version: int = SOURCE_SPLIT_SCHEMA_VERSION
    split: Literal["source"] = "source"
    backend: str
    builds_dir: str | None
    data_dirs: list[str]
    mode: EvalMode
    seed: int
    collar_s: float
    false_clip_rates: list[float]
    created_at: str
    model_ids: dict[str, str]
    sources: list[SourceBlock]
    overall: OverallBlock
    clips: list[ClipScoreRow]
    timing: Timing
    versions: dict[str, str]
    skipped_files: list[str]

    def street_false_alarms(self) -> StreetFalseAlarms:
        """The deployed thresholds' events on street ambience, from the clip rows."""
        street = [row for row in self.clips if row.label in AMBIENCE_LABELS]
        return StreetFalseAlarms(
            hours=sum(row.duration_s for row in street) / 3600.0,
            events=sum(len(row.events) for row in street),
        )


@dataclass(frozen=True)
class StreetFalseAlarms:
    """Events on the non-target clips labelled background, ambience, crowd, street or traffic:
    what a sensor on a lamp post hears all day, without the hard look-alikes (door knocks,
    the gunshot recorders' `other` clips, ESC-50 classes) that the background figure
    (``DeployedScores.false_alarms_per_hour``) includes; speech is in neither. Issue 16's
    false alarms per hour are measured on such audio."""

    hours: float
    events: int

    @property
    def per_hour(self) -> float | None:
        return false_alarms_per_hour(self.events, self.hours * 3600.0)


def documented_fields() -> dict[str, list[str]]:
    """Every model of this JSON and its field names (for the docs test)."""
    models: list[type[BaseModel]] = [
        SourceSplitResult,
        SourceBlock,
        OverallBlock,
        ClipRecall,
        RecallPoint,
        ClassRecall,
        SingleThresholdRecall,
        SingleThresholdPoint,
        DeployedScores,
        SourceMixtures,
        ClipScoreRow,
    ]
    return {model.__name__: list(model.model_fields) for model in models}
