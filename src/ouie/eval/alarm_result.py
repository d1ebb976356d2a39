"""The ``ouie eval tune --split source`` JSON: one pydantic model, documented in docs/eval.md.

Per label, the lowest threshold of a grid whose false alarms, counted by the node's event
logic on every non-target clip scored out of source, stay within a rate per day; the
events at every grid value; and the recall of the target clips at the threshold chosen.
Unknown keys are refused when reading it back.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ouie.eval.source_result import ClassRecall
from ouie.node.tuned import TunedThresholds

ALARM_TUNE_SCHEMA_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelAlarms(_Strict):
    label: str
    threshold: float = Field(description="lowest grid value meeting the rate; the top if none")
    met: bool = Field(description="whether some grid value meets the rate")
    events: int = Field(description="events of the label on the measured audio at threshold")
    false_alarms_per_day: float = Field(description="events / measured seconds × 86400")
    speech_events: int = Field(description="of those events, the ones on speech clips")
    events_by_threshold: list[int] = Field(description="events at each grid value")
    targets: ClassRecall | None = Field(
        description="target clips of the label where it fires at threshold; null: --no-targets"
    )


class SkippedSource(_Strict):
    source: str
    reason: str
    non_target_clips: int
    non_target_hours: float
    target_clips: int


class AlarmTiming(_Strict):
    audio_s: float = Field(description="seconds of audio scored by the classifiers")
    score_wall_s: float = Field(description="wall time of the classifier passes")
    replay_wall_s: float = Field(description="wall time of the event-logic replays")
    replays: int = Field(description="detect_offline runs on stored scores")
    guard_decisions: int = Field(description="speech guard decisions computed (not cached)")
    wall_s: float = Field(description="wall time of the whole run")


class AlarmTuneResult(_Strict):
    schema_version: int = ALARM_TUNE_SCHEMA_VERSION
    backend: str
    builds_dir: str | None
    data_dirs: list[str]
    max_false_per_day: float
    negatives: Literal["street", "all"] = Field(
        description="which non-target clips the false alarms are counted on: street "
        "(background, ambience, crowd, traffic, speech) or all"
    )
    grid: list[float]
    created_at: str
    model_family: str
    model_ids: dict[str, str] = Field(description="per source scored, its classifier")
    event_settings: dict[str, float | int | bool] = Field(
        description="the event logic's settings (thresholds aside)"
    )
    measured_clips: int
    measured_hours: float
    background_hours: float
    speech_clips: int
    speech_hours: float
    resolution_per_day: float = Field(description="one event on the measured audio, per day")
    sources_measured: list[str]
    skipped_sources: list[SkippedSource]
    labels: list[LabelAlarms]
    tuned: TunedThresholds
    timing: AlarmTiming
    versions: dict[str, str]
    skipped_files: list[str]


def documented_fields() -> dict[str, list[str]]:
    """Every model of this module and its field names (for the docs test; the embedded
    ``TunedThresholds`` is ``ouie.node.tuned``'s, documented beside them)."""
    models: list[type[BaseModel]] = [AlarmTuneResult, LabelAlarms, SkippedSource, AlarmTiming]
    return {model.__name__: list(model.model_fields) for model in models}
