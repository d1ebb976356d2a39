"""The ``ouie eval`` JSON: one pydantic model, documented field by field in docs/eval.md.

A test fails when a field of any model here has no entry in docs/eval.md. Rates and
scores that a run could not measure (no reference events, no speech audio, a mode that
skips that pass) are ``null``, never 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

EvalMode = Literal["clips", "mixtures", "both"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LatencySummary(_Strict):
    p50: float | None = Field(description="median seconds from true onset to emission")
    p95: float | None = Field(description="95th percentile, seconds")
    n: int = Field(description="true events found by the streaming path (latency samples)")
    missed: int = Field(description="true events in the streamed mixtures not found")
    n_mixtures: int = Field(description="mixtures streamed")
    chunk_s: float = Field(description="chunk size pushed into DetectionPipeline.push")


class ClassScores(_Strict):
    f1: float | None
    precision: float | None
    recall: float | None
    n: int = Field(description="reference events (mixtures) or clips (clips mode) of the class")
    error_rate: float | None = None
    average_precision: float | None = None


class EbrScores(_Strict):
    ebr_db: float
    event_f1: float | None
    error_rate: float | None
    n: int


class LocalisationSummary(_Strict):
    """Filled by the digital twin (issue: twin); ``null`` from ``ouie eval`` on audio."""

    median_m: float
    p90_m: float
    n: int


class MixtureSummary(_Strict):
    protocol: str
    n: int
    duration_s: float
    rate: int
    ebrs_db: list[float]
    seed: int
    ambience: int = Field(description="mixtures on a long ambience recording")
    constructed: int = Field(description="mixtures on a constructed background")
    ambience_files: list[str]
    skipped_silent: int = Field(description="target clips with no sounding part")


class Timing(_Strict):
    audio_s: float
    wall_s: float
    x_realtime: float | None
    device: str


class PrCurve(_Strict):
    precision: list[float]
    recall: list[float]


class EvalResult(_Strict):
    schema_version: int = SCHEMA_VERSION
    backend: str
    model_id: str
    data_dir: str
    mode: EvalMode
    fold: int | None
    seed: int
    collar_s: float
    created_at: str
    n_files: int
    n_clips: int
    n_mixtures: int
    event_f1: float | None
    event_precision: float | None
    event_recall: float | None
    error_rate: float | None
    event_f1_macro: float | None
    error_rate_macro: float | None
    segment_f1: float | None
    segment_error_rate: float | None
    mean_average_precision: float | None
    psds: float | None
    psds_params: dict[str, float]
    false_alarms_per_hour: float | None
    background_hours: float
    background_events: int
    speech_false_alarms_per_hour: float | None
    speech_hours: float
    speech_events: int
    latency_s: LatencySummary | None
    per_class: dict[str, ClassScores]
    per_class_basis: Literal["mixtures", "clips"]
    by_ebr: list[EbrScores]
    clip_accuracy: float | None
    clip_accuracy_targets: float | None
    clip_accuracy_non_targets: float | None
    confusion: dict[str, dict[str, int]]
    confusion_basis: Literal["clips", "mixtures"]
    pr_curves: dict[str, PrCurve]
    localisation: LocalisationSummary | None = None
    mixtures: MixtureSummary | None
    timing: Timing
    thresholds: dict[str, float]
    versions: dict[str, str]
    skipped_files: list[str]


def documented_fields() -> dict[str, list[str]]:
    """Every model of the JSON and its field names (for the docs test)."""
    models: list[type[BaseModel]] = [
        EvalResult,
        LatencySummary,
        ClassScores,
        EbrScores,
        LocalisationSummary,
        MixtureSummary,
        Timing,
        PrCurve,
    ]
    return {model.__name__: list(model.model_fields) for model in models}
