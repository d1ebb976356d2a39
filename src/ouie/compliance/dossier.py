"""``ouie dossier``: the feasibility file a city sends the prefect before an experiment, in four
parts as the prefect asked for them: technique, juridique, stratégie, calendrier.

Like the DPIA (``ouie.compliance.dpia``, whose inputs and risk register it reuses), nothing
in it is typed twice: sensors, zone, hours, legal basis, purposes, the experiment's dates and
criteria come from the live configuration; the privacy figures from an ``ouie eval privacy``
JSON; the detection figures (recall, false alarms per sensor-day) from an ``ouie eval --split
source`` JSON, i.e. measured on recording sources the model never heard; the operators'
feedback (annex, part 3.4) from an ``ouie report feedback`` JSON. Where an input does
not say something (latency is not measured by the source split; no detection JSON given),
the dossier says so instead of inventing a number, and where the measured model is not the
one the sensors run, it says that too.

Outputs (in ``--out``): ``dossier.md``, ``dossier.pdf`` and ``sensor-map.png``.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ouie.compliance.dpia import (
    GAUGE,
    DpiaError,
    Inputs,
    build_context,
    load_inputs,
    render,
    sensor_map,
)
from ouie.compliance.feedback_report import FeedbackReport, read_report
from ouie.config.compliance import Experiment
from ouie.core.labels import EVENT_LABELS
from ouie.core.model_base import StrictModel
from ouie.eval.source_result import SourceSplitResult
from ouie.models.store import KNOWN_FILES
from ouie.node.classifiers.compact import model_id_for
from ouie.node.classifiers.yamnet import MODEL_FILE as YAMNET_FILE
from ouie.web.i18n import translate

DossierLang = Literal["fr", "en"]
BUNDLED = Path(__file__).resolve().parents[1] / "models_bundled"


class DossierError(DpiaError):
    """The inputs cannot make a dossier (no hub, unreadable evaluation JSON...)."""


# --------------------------------------------------------------------------- detection


class ClassFigure(StrictModel):
    label: str
    found: int
    n: int
    recall: float | None


class DetectionFigures(StrictModel):
    """What the dossier quotes of an ``ouie eval --split source`` run (docs/eval.md)."""

    backend: str
    model_ids: list[str]
    created_at: str
    data_dirs: list[str]
    sources_evaluated: int
    sources_skipped: int
    n_clips: int
    n_targets: int
    n_non_targets: int
    n_speech: int
    targets_found: int | None
    recall: float | None  # at the deployed thresholds
    per_class: list[ClassFigure]
    recall_at_2pct: float | None  # threshold-free, all non-targets
    street_recall_at_2pct: float | None
    # the same, each (source, label) cell of targets weighing alike (docs/eval.md): one large
    # collection cannot decide it, as it decides the pooled figure
    balanced_recall_at_2pct: float | None
    street_balanced_recall_at_2pct: float | None
    background_hours: float | None
    background_events: int | None
    false_alarms_per_hour: float | None
    street_hours: float
    street_events: int
    street_false_alarms_per_hour: float | None
    hours_per_day: float
    false_alarms_per_sensor_day: float | None
    street_false_alarms_per_sensor_day: float | None
    speech_clips: int | None
    speech_clips_with_event: int | None
    mixture_event_f1: float | None
    latency_s: float | None  # not measured by the source split: always None here
    wall_s: float
    node_backends: list[str]
    same_backend: bool


def _recall_at(recall: Any, rate: float, field: str = "recall") -> float | None:
    """``field`` (``recall``, pooled, or ``balanced_recall``) of the point at ``rate``."""
    if recall is None:
        return None
    for point in recall.points:
        if abs(point.max_false_clip_rate - rate) < 1e-9:
            value = getattr(point, field)
            return float(value) if value is not None else None
    return None


def detection_figures(
    result: SourceSplitResult, hours_per_day: float, node_backends: Sequence[str]
) -> DetectionFigures:
    """The pooled figures of ``result``; false alarms per sensor-day are false alarms per
    hour of background times the zone's listening hours per day. The street figure counts
    only the events on street background and ambience clips (no hard look-alikes)."""
    overall = result.overall
    deployed = overall.deployed
    street = result.street_false_alarms()
    street_rate = street.per_hour
    rate = deployed.false_alarms_per_hour if deployed is not None else None
    per_class = [
        ClassFigure(label=str(label), found=c.found, n=c.n, recall=c.recall)
        for label in EVENT_LABELS
        if deployed is not None and (c := deployed.per_class.get(str(label))) is not None
    ]
    return DetectionFigures(
        backend=result.backend,
        model_ids=sorted(set(result.model_ids.values())),
        created_at=result.created_at,
        data_dirs=result.data_dirs,
        sources_evaluated=len(overall.sources_evaluated),
        sources_skipped=len(overall.sources_skipped),
        n_clips=overall.n_clips,
        n_targets=overall.n_targets,
        n_non_targets=overall.n_non_targets,
        n_speech=overall.n_speech,
        targets_found=deployed.targets_found if deployed is not None else None,
        recall=deployed.targets_found / deployed.targets
        if deployed is not None and deployed.targets
        else None,
        per_class=per_class,
        recall_at_2pct=_recall_at(overall.clip_recall, 0.02),
        street_recall_at_2pct=_recall_at(overall.street_clip_recall, 0.02),
        balanced_recall_at_2pct=_recall_at(overall.clip_recall, 0.02, "balanced_recall"),
        street_balanced_recall_at_2pct=_recall_at(
            overall.street_clip_recall, 0.02, "balanced_recall"
        ),
        background_hours=deployed.background_hours if deployed is not None else None,
        background_events=deployed.background_events if deployed is not None else None,
        false_alarms_per_hour=rate,
        street_hours=street.hours,
        street_events=street.events,
        street_false_alarms_per_hour=street_rate,
        hours_per_day=hours_per_day,
        false_alarms_per_sensor_day=rate * hours_per_day if rate is not None else None,
        street_false_alarms_per_sensor_day=street_rate * hours_per_day
        if street_rate is not None
        else None,
        speech_clips=deployed.speech_clips if deployed is not None else None,
        speech_clips_with_event=deployed.speech_clips_with_event if deployed is not None else None,
        mixture_event_f1=overall.mixtures.event_f1 if overall.mixtures is not None else None,
        latency_s=None,
        wall_s=result.timing.wall_s,
        node_backends=sorted(set(node_backends)),
        same_backend=set(node_backends) == {result.backend},
    )


def read_detection(path: Path) -> SourceSplitResult:
    try:
        return SourceSplitResult.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError) as exc:
        raise DossierError(f"{path}: not an `ouie eval --split source` JSON ({exc})") from exc


# --------------------------------------------------------------------------- models


class ModelCard(StrictModel):
    backend: str  # the sensors' configured backend
    part: str  # the model of that backend this card is about (compact, yamnet, mn04)
    model_id: str | None
    card: str | None  # path of the data card, relative to the package
    training_clips: int | None
    training_sources: int | None
    training_labels: int | None


#: The models each backend runs. The cascade's ouie-compact gates and the AudioSet teachers
#: confirm; ``auto`` is the cascade where the teachers are installed and ouie-compact alone
#: elsewhere, so its cards are every model it may run.
BACKEND_PARTS: dict[str, tuple[str, ...]] = {
    "cascade": ("compact", "yamnet", "mn04"),
    "auto": ("compact", "yamnet", "mn04"),
}


def _compact_card(backend: str) -> ModelCard:
    onnx = BUNDLED / "ouie_compact.onnx"
    model_id = (
        model_id_for(hashlib.sha256(onnx.read_bytes()).hexdigest()) if onnx.is_file() else None
    )
    clips = sources = labels = None
    listing = BUNDLED / "TRAINING_FILES.csv"
    if listing.is_file():
        with listing.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        clips = len(rows)
        sources = len({row.get("source_repo", "") for row in rows})
        labels = len({row.get("label", "") for row in rows})
    return ModelCard(
        backend=backend,
        part="compact",
        model_id=model_id,
        card="src/ouie/models_bundled/DATA_CARD.md",
        training_clips=clips,
        training_sources=sources,
        training_labels=labels,
    )


def _third_party_card(backend: str, part: str) -> ModelCard:
    # YAMNet's file is checked against a known digest, so its id is known here; mn04's ONNX
    # is exported on the sensor from the checked state_dict, and its id is the sensor's.
    known = KNOWN_FILES[YAMNET_FILE].sha256 if part == "yamnet" else None
    return ModelCard(
        backend=backend,
        part=part,
        model_id=f"yamnet-tflite@{known[:8]}" if known else None,
        card=None,
        training_clips=None,
        training_sources=None,
        training_labels=None,
    )


def model_cards(backends: Sequence[str]) -> list[ModelCard]:
    """Every model the sensors run, with what their data cards say. ouie-compact's card
    and its list of training files ship with the package; the AudioSet taggers (YAMNet,
    mn04) were trained by others on AudioSet, which has no per-file list here."""
    cards = []
    for backend in sorted(set(backends)):
        for part in BACKEND_PARTS.get(backend, (backend,)):
            if part == "compact":
                cards.append(_compact_card(backend))
            else:
                cards.append(_third_party_card(backend, part))
    return cards


# --------------------------------------------------------------------------- calendar


class Milestone(StrictModel):
    key: str  # start installation calibration evaluation mid_term_review review decision end
    day: date
    days_from_start: int


def calendar(experiment: Experiment) -> list[Milestone]:
    """The experiment's dated phases and reviews, in order."""
    days: list[tuple[str, date]] = [("start", experiment.start)]
    if experiment.phases is not None:
        days += list(experiment.phases.model_dump().items())
    phase_days = {day for _, day in days}
    # a review on a phase's day (the mid-term review) is that phase, listed once
    days += [("review", review) for review in experiment.reviews if review not in phase_days]
    days.append(("end", experiment.end))
    order = {
        "start": 0,
        "installation": 1,
        "calibration": 2,
        "evaluation": 3,
        "mid_term_review": 4,
        "review": 5,
        "decision": 6,
        "end": 7,
    }
    days.sort(key=lambda item: (item[1], order[item[0]]))
    return [
        Milestone(key=key, day=day, days_from_start=(day - experiment.start).days)
        for key, day in days
    ]


# --------------------------------------------------------------------------- document


class NodeLink(StrictModel):
    """How one configured sensor reaches the hub (for the security part)."""

    sensor: str
    publish: str
    tls: bool


def node_links(inputs: Inputs) -> list[NodeLink]:
    links = []
    for _, node in inputs.nodes:
        url = node.publish.mqtt.url if node.publish.kind == "mqtt" else ""
        links.append(
            NodeLink(
                sensor=node.sensor_id,
                publish=node.publish.kind,
                tls=url.startswith(("mqtts://", "ssl://", "wss://")),
            )
        )
    return links


def build_dossier_context(
    inputs: Inputs,
    configs: Sequence[Path],
    detection: SourceSplitResult | None,
    detection_path: Path | None,
    lang: DossierLang = "fr",
    feedback: FeedbackReport | None = None,
    feedback_path: Path | None = None,
) -> dict[str, Any]:
    context = build_context(inputs, configs)
    comp = inputs.compliance
    zone = comp.zone
    backends = [node.classifier.backend for _, node in inputs.nodes]
    hours = zone.hours_per_day() if zone is not None else 24.0
    figures = detection_figures(detection, hours, backends) if detection is not None else None
    criteria = comp.experiment.success if comp.experiment is not None else None
    context.update(
        {
            "d": figures,
            "detection": None
            if detection_path is None
            else {"path": str(detection_path), "sha256": _sha256(detection_path)},
            "cards": model_cards(backends),
            "calendar": calendar(comp.experiment) if comp.experiment is not None else [],
            "criteria": criteria,
            "lab_meets_false_alerts": None
            if figures is None or criteria is None or figures.background_hours is None
            else _shows_at_most(
                figures.background_events or 0,
                figures.background_hours,
                figures.hours_per_day,
                criteria.max_false_alerts_per_sensor_day,
            ),
            "street_meets_false_alerts": None
            if figures is None or criteria is None or not figures.street_hours
            else _shows_at_most(
                figures.street_events,
                figures.street_hours,
                figures.hours_per_day,
                criteria.max_false_alerts_per_sensor_day,
            ),
            "privacy_model_matches": _privacy_model_matches(inputs, backends),
            "links": node_links(inputs),
            "today": datetime.now(UTC).date(),
            "label_names": {
                str(label): translate(lang, f"label.{label}") for label in EVENT_LABELS
            },
            "stops_at": comp.experiment.ends_at() if comp.experiment is not None else None,
            "gauge": GAUGE,
            # the operators' feedback (`ouie report feedback`): the annex and part 3.4
            "f": feedback,
            "feedback": None
            if feedback_path is None
            else {"path": str(feedback_path), "sha256": _sha256(feedback_path)},
            "figure": None,
        }
    )
    return context


def _privacy_model_matches(inputs: Inputs, backends: Sequence[str]) -> bool:
    return set(backends) <= {inputs.report.backend}


def _shows_at_most(events: int, hours: float, hours_per_day: float, limit: float) -> bool:
    """Whether a laboratory measurement shows at most ``limit`` false alerts per listening day:
    only when even one more event over the measured hours would stay within it, so that 0
    events in a few minutes of ambience is not read as "met" (it resolves nothing)."""
    if hours <= 0:
        return False
    return (events + 1) / hours * hours_per_day <= limit


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def generate_dossier(
    configs: Sequence[Path],
    eval_json: Path,
    out: Path,
    detection_json: Path | None = None,
    lang: DossierLang = "fr",
    pdf: bool = True,
    feedback_json: Path | None = None,
) -> list[Path]:
    """Write ``dossier.md`` (and ``dossier.pdf``) and the sensor map into ``out``; with
    ``feedback_json`` (an ``ouie report feedback`` JSON) the operators' feedback is an annex
    and part 3.4 compares the criteria with it."""
    inputs = load_inputs(configs, eval_json)
    detection = read_detection(detection_json) if detection_json is not None else None
    feedback = read_report(feedback_json) if feedback_json is not None else None
    context = build_dossier_context(
        inputs, configs, detection, detection_json, lang, feedback, feedback_json
    )
    out.mkdir(parents=True, exist_ok=True)
    written = [sensor_map(inputs.compliance, out / "sensor-map.png", lang)]
    path = out / "dossier.md"
    path.write_text(render(f"dossier_{lang}.md.j2", context), encoding="utf-8")
    written.append(path)
    if pdf:
        from ouie.compliance.pdf import markdown_to_pdf

        title = (
            "Dossier de faisabilité — détection d'événements sonores"
            if lang == "fr"
            else "Feasibility dossier — acoustic event detection"
        )
        pdf_path = out / "dossier.pdf"
        markdown_to_pdf(path.read_text(encoding="utf-8"), pdf_path, title, base=out)
        written.append(pdf_path)
    return written
