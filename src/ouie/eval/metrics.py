"""Metrics, computed the DCASE way with the field's own libraries (docs/eval.md).

* Event-based F1 / error rate: ``sed_eval.sound_event.EventBasedMetrics`` with a 0.5 s onset
  collar and offsets not scored (DCASE 2017 task 2). Micro = sed_eval's "overall" counts over
  ouie's eight classes; macro = mean over the classes that have reference events.
* Segment-based F1 / error rate: ``sed_eval.sound_event.SegmentBasedMetrics``, 1 s segments.
* Threshold-free: per-class segment-based average precision (1 s) and PSDS from
  ``sed_scores_eval`` on the classifier's score timelines.
* False alarms per hour, clip accuracy, latency percentiles, confusion counts: plain
  arithmetic, here so that it is tested in one place.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

DEFAULT_COLLAR_S = 0.5
SEGMENT_S = 1.0
NO_EVENT = "none"

#: PSDS operating point: DCASE 2021 scenario 2 (tolerant localisation, cross-triggers count).
#: PSDS penalises the spread of per-class ROCs (``alpha_st``), so a class with one or two
#: reference events would decide it; it is computed over classes with at least this many.
PSDS_MIN_CLASS_EVENTS = 5
PSDS_PARAMS: dict[str, float] = {
    "dtc_threshold": 0.1,
    "gtc_threshold": 0.1,
    "cttc_threshold": 0.3,
    "alpha_ct": 0.5,
    "alpha_st": 1.0,
    "max_efpr": 100.0,
}


class TimedEvent(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def onset_s(self) -> float: ...
    @property
    def offset_s(self) -> float: ...


def _quiet_import(name: str) -> ModuleType:
    """Import sed_eval / sed_scores_eval: dcase_util imports pkg_resources and warns."""
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(name)


def sed_eval_module() -> ModuleType:
    return _quiet_import("sed_eval")


def sed_scores_eval_module() -> ModuleType:
    module = _quiet_import("sed_scores_eval")
    _writable_arrays_for_cython()
    return module


def _writable_arrays_for_cython() -> None:
    """sed_scores_eval 0.0.4's Cython kernel (``onset_offset_curves``, used by PSDS) takes
    typed memoryviews, which reject the read-only arrays that pandas ≥ 3 hands out under
    copy-on-write ("buffer source array is read-only"). Give it writable copies; the
    values, and so the results, are unchanged."""
    statistics = _quiet_import("sed_scores_eval.base_modules.statistics")
    original = statistics.onset_offset_curves
    if getattr(original, "__name__", "") == "writable_onset_offset_curves":
        return

    def writable_onset_offset_curves(scores: Any, timestamps: Any, candidates: Any = None) -> Any:
        if candidates is not None:
            candidates = np.array(candidates)
        return original(np.array(scores), np.array(timestamps), candidates)

    setattr(statistics, "onset_offset_curves", writable_onset_offset_curves)  # noqa: B010


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class ClassResult:
    f1: float | None
    precision: float | None
    recall: float | None
    error_rate: float | None
    n_ref: int
    n_sys: int


@dataclass(frozen=True)
class DetectionScores:
    f1: float | None
    precision: float | None
    recall: float | None
    error_rate: float | None
    f1_macro: float | None
    error_rate_macro: float | None
    per_class: dict[str, ClassResult]


def _as_dicts(filename: str, events: Sequence[TimedEvent]) -> list[dict[str, Any]]:
    return [
        {
            "filename": filename,
            "event_label": str(e.label),
            "onset": float(e.onset_s),
            "offset": float(max(e.offset_s, e.onset_s)),
        }
        for e in events
    ]


def _summarise(metric: Any, labels: Sequence[str]) -> DetectionScores:
    # Not ``results()``: its class-wise average takes nanmean over all-NaN columns (a
    # RuntimeWarning) and averages in classes without references; macro is computed below.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        overall = metric.results_overall_metrics()
        class_wise = metric.results_class_wise_metrics()
    per_class: dict[str, ClassResult] = {}
    for label in labels:
        wise = class_wise[label]
        n_ref = int(wise["count"]["Nref"])
        n_sys = int(wise["count"]["Nsys"])
        f1 = _finite(wise["f_measure"]["f_measure"]) if n_ref else None
        per_class[label] = ClassResult(
            f1=0.0 if n_ref and f1 is None else f1,  # sed_eval: 0/0 when nothing was found
            precision=_finite(wise["f_measure"]["precision"]) if n_sys else None,
            recall=_finite(wise["f_measure"]["recall"]) if n_ref else None,
            error_rate=_finite(wise["error_rate"]["error_rate"]) if n_ref else None,
            n_ref=n_ref,
            n_sys=n_sys,
        )
    scored = [c for c in per_class.values() if c.n_ref > 0]
    f1s = [c.f1 for c in scored if c.f1 is not None]
    ers = [c.error_rate for c in scored if c.error_rate is not None]
    n_ref_total = sum(c.n_ref for c in per_class.values())
    n_sys_total = sum(c.n_sys for c in per_class.values())
    f1_overall = _finite(overall["f_measure"]["f_measure"]) if n_ref_total else None
    return DetectionScores(
        f1=0.0 if n_ref_total and f1_overall is None else f1_overall,
        precision=_finite(overall["f_measure"]["precision"]) if n_sys_total else None,
        recall=_finite(overall["f_measure"]["recall"]) if n_ref_total else None,
        error_rate=_finite(overall["error_rate"]["error_rate"]) if n_ref_total else None,
        f1_macro=float(np.mean(f1s)) if f1s else None,
        error_rate_macro=float(np.mean(ers)) if ers else None,
        per_class=per_class,
    )


def event_based_scores(
    references: Mapping[str, Sequence[TimedEvent]],
    estimates: Mapping[str, Sequence[TimedEvent]],
    labels: Sequence[str],
    collar_s: float = DEFAULT_COLLAR_S,
) -> DetectionScores:
    """Onset-only event-based metrics over files (keys of ``references``)."""
    sed_eval = sed_eval_module()
    metric = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=list(labels),
        evaluate_onset=True,
        evaluate_offset=False,
        t_collar=float(collar_s),
        percentage_of_length=0.5,
    )
    for name, reference in references.items():
        metric.evaluate(
            reference_event_list=_as_dicts(name, reference),
            estimated_event_list=_as_dicts(name, estimates.get(name, ())),
        )
    return _summarise(metric, labels)


def segment_based_scores(
    references: Mapping[str, Sequence[TimedEvent]],
    estimates: Mapping[str, Sequence[TimedEvent]],
    durations: Mapping[str, float],
    labels: Sequence[str],
    segment_s: float = SEGMENT_S,
) -> DetectionScores:
    sed_eval = sed_eval_module()
    metric = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=list(labels), time_resolution=float(segment_s)
    )
    for name, reference in references.items():
        metric.evaluate(
            reference_event_list=_as_dicts(name, reference),
            estimated_event_list=_as_dicts(name, estimates.get(name, ())),
            evaluated_length_seconds=float(durations[name]),
        )
    return _summarise(metric, labels)


# --- threshold-free --------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreTimeline:
    """Scores of one recording as consecutive frames: ``boundaries_s`` has n + 1 entries."""

    boundaries_s: npt.NDArray[np.float64]
    scores: npt.NDArray[np.float32]  # [n, len(labels)]


def timeline_from_windows(
    starts_s: npt.NDArray[np.float64],
    scores: npt.NDArray[np.float32],
    window_s: float,
    duration_s: float,
) -> ScoreTimeline:
    """Each window's score is assigned to the frame around its centre (midpoints between
    consecutive centres), the first frame starting at 0 and the last ending at the end."""
    if len(starts_s) == 0:
        return ScoreTimeline(
            np.array([0.0, duration_s]), np.zeros((1, scores.shape[1]), np.float32)
        )
    centres = np.asarray(starts_s, dtype=np.float64) + window_s / 2
    inner = (centres[:-1] + centres[1:]) / 2
    end = max(duration_s, float(inner[-1]) + 1e-3) if inner.size else duration_s
    boundaries = np.concatenate([[0.0], inner, [end]])
    return ScoreTimeline(boundaries, np.asarray(scores, dtype=np.float32))


@dataclass(frozen=True)
class ThresholdFree:
    average_precision: dict[str, float]  # classes with reference events only
    mean_average_precision: float | None
    psds: float | None
    pr_curves: dict[str, tuple[list[float], list[float]]]  # label -> (precision, recall)


def _score_tables(
    timelines: Mapping[str, ScoreTimeline], labels: Sequence[str], keep: Sequence[str]
) -> dict[str, Any]:
    sse = sed_scores_eval_module()
    columns = [labels.index(label) for label in keep]
    return {
        name: sse.base_modules.scores.create_score_dataframe(
            t.scores[:, columns].astype(np.float64), t.boundaries_s, list(keep)
        )
        for name, t in timelines.items()
    }


def _downsample_curve(
    precision: npt.NDArray[np.float64], recall: npt.NDArray[np.float64], points: int = 100
) -> tuple[list[float], list[float]]:
    order = np.argsort(recall, kind="stable")
    p, r = precision[order], recall[order]
    if p.size > points:
        pick = np.unique(np.linspace(0, p.size - 1, points).round().astype(int))
        p, r = p[pick], r[pick]
    return [round(float(x), 4) for x in p], [round(float(x), 4) for x in r]


def threshold_free(
    timelines: Mapping[str, ScoreTimeline],
    references: Mapping[str, Sequence[TimedEvent]],
    durations: Mapping[str, float],
    labels: Sequence[str],
    segment_s: float = SEGMENT_S,
    with_psds: bool = True,
) -> ThresholdFree:
    """Segment-based AP per class, their mean, PR curves, and PSDS (classes with references)."""
    present = [
        label for label in labels if any(e.label == label for r in references.values() for e in r)
    ]
    if not present or not timelines:
        return ThresholdFree({}, None, None, {})
    sse = sed_scores_eval_module()
    tables = _score_tables(timelines, labels, present)
    truth = {
        name: [
            (float(e.onset_s), float(e.offset_s), str(e.label)) for e in references.get(name, ())
        ]
        for name in timelines
    }
    lengths = {name: float(durations[name]) for name in timelines}
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        ap, curves = sse.segment_based.average_precision(
            tables, truth, lengths, segment_length=float(segment_s)
        )
        psds_value: float | None = None
        counts = {
            label: sum(e.label == label for r in references.values() for e in r)
            for label in present
        }
        psds_labels = [label for label in present if counts[label] >= PSDS_MIN_CLASS_EVENTS]
        if with_psds and psds_labels:
            psds_tables = (
                tables if psds_labels == present else _score_tables(timelines, labels, psds_labels)
            )
            psds_truth = {
                name: [t for t in events if t[2] in psds_labels] for name, events in truth.items()
            }
            params: dict[str, float | None] = dict(PSDS_PARAMS)
            if len(psds_labels) == 1:  # no other class to cross-trigger on
                params.update(cttc_threshold=None, alpha_ct=0.0)
            result = sse.intersection_based.psds(
                psds_tables, psds_truth, lengths, unit_of_time="hour", **params
            )
            psds_value = _finite(result[0])
    per_class = {label: v for label in present if (v := _finite(ap[label])) is not None}
    pr = {
        label: _downsample_curve(np.asarray(curves[label][0]), np.asarray(curves[label][1]))
        for label in present
    }
    mean = float(np.mean(list(per_class.values()))) if per_class else None
    return ThresholdFree(per_class, mean, psds_value, pr)


# --- counts, rates, clips, latency -----------------------------------------------------


def false_alarms_per_hour(n_events: int, seconds: float) -> float | None:
    return n_events / (seconds / 3600.0) if seconds > 0 else None


def clip_correct(true_label: str, detected: Collection[str], is_target: bool) -> bool:
    """A target clip is right when exactly its label came out; a non-target when nothing did."""
    found = {str(label) for label in detected}
    return found == {true_label} if is_target else not found


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else None


class EmittedEvent(TimedEvent, Protocol):
    @property
    def emitted_at_s(self) -> float: ...


def match_latencies(
    truth: Sequence[TimedEvent],
    detected: Sequence[EmittedEvent],
    collar_s: float = DEFAULT_COLLAR_S,
) -> tuple[list[float], int]:
    """Latency (emitted_at − true onset) of each true event found with the right label and
    onset within the collar (each detection used once, earliest emission first); and how
    many true events were not found."""
    latencies: list[float] = []
    missed = 0
    used: set[int] = set()
    for ref in sorted(truth, key=lambda e: e.onset_s):
        candidates = [
            (d.emitted_at_s, i)
            for i, d in enumerate(detected)
            if i not in used
            and str(d.label) == str(ref.label)
            and abs(d.onset_s - ref.onset_s) <= collar_s
        ]
        if not candidates:
            missed += 1
            continue
        emitted, index = min(candidates)
        used.add(index)
        latencies.append(emitted - ref.onset_s)
    return latencies, missed


def add_confusion(
    table: dict[str, dict[str, int]], true_label: str, detected: Collection[str]
) -> None:
    """Count one example: every distinct detected label once, or ``none``."""
    row = table.setdefault(true_label, {})
    found = sorted({str(label) for label in detected}) or [NO_EVENT]
    for label in found:
        row[label] = row.get(label, 0) + 1
