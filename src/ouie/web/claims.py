"""What the public page and the public notices claim, generated from the configuration that
runs, each claim with the tests that show it holds.

The French public page once called the audit log "infalsifiable" while a rewrite by someone
with database access went undetected. A claim is therefore made here, from settings, or not
at all: the audit log is called tamper-evident only when its head is signed and published
(``audit.anchor_key``); "no camera turns on a sound" only when no class is cued
automatically; the counts' delay and the experiment's end are the configured ones.
``ouie dpia`` writes the notices from the same claims (``ouie.compliance.dpia``), and
``tests/web/test_claims.py`` checks that every test named here exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from ouie.config.compliance import ComplianceSettings
from ouie.config.web import web_settings
from ouie.core.labels import EventLabel
from ouie.core.model_base import StrictModel
from ouie.web.i18n import Lang

#: key → (English, French); ``{name}`` fields are filled from the settings
_TEXT: dict[str, tuple[str, str]] = {
    "audio": (
        "No sound leaves a sensor: it is analysed in the sensor's memory a few seconds at a "
        "time and overwritten; nothing is recorded or transmitted.",
        "Aucun son ne quitte un capteur : il est analysé dans sa mémoire quelques secondes à "
        "la fois puis effacé ; rien n'est enregistré ni transmis.",
    ),
    "speech": (
        "There is no speech class, and a sound heard over speech is suppressed unless it is "
        "a very clear impulsive sound (shot, explosion, breaking glass).",
        "Il n'existe aucune catégorie « parole », et un son entendu pendant que quelqu'un "
        "parle est écarté, sauf un bruit impulsif très net (tir, explosion, bris de verre).",
    ),
    "audit": (
        "Who sees incidents: authorised control-room staff only; every reading and every "
        "action is written to a hash-chained audit log that the auditor can export.",
        "Qui voit les incidents : uniquement le personnel habilité du centre de supervision ; "
        "chaque consultation et chaque action est inscrite dans un journal d'audit chaîné, "
        "que l'auditeur peut exporter.",
    ),
    "audit_anchored": (
        "Who sees incidents: authorised control-room staff only; every reading and every "
        "action is written to a tamper-evident audit log: its signed head is published on "
        "this page, so a later rewrite of the log can be detected.",
        "Qui voit les incidents : uniquement le personnel habilité du centre de supervision ; "
        "chaque consultation et chaque action est inscrite dans un journal d'audit scellé : "
        "son empreinte signée est publiée sur cette page, et toute réécriture ultérieure du "
        "journal est détectable.",
    ),
    "cameras_operator": (
        "No camera is turned towards a sound without an operator deciding it.",
        "Aucune caméra n'est orientée vers un son sans la décision d'un opérateur.",
    ),
    "cameras_auto": (
        "Video-protection cameras are turned automatically towards {labels}, as authorised "
        "by: {provision}.",
        "Des caméras de vidéoprotection sont orientées automatiquement vers : {labels}, "
        "comme l'autorise : {provision}.",
    ),
    "counts": (
        "Published incident counts cover whole days that ended at least {hours} h before; a "
        "class with fewer than {min} incidents in a week is shown as '< {min}', so no single "
        "incident can be read from them.",
        "Les nombres d'incidents publiés portent sur des journées entières terminées depuis au "
        "moins {hours} h ; un type comptant moins de {min} incidents dans la semaine est "
        "affiché « < {min} », si bien qu'aucun incident isolé ne peut s'y lire.",
    ),
    "experiment": (
        "This is an experiment from {start} to {end}; at its end every detection and "
        "incident is deleted and the system stops unless a new assessment extends it.",
        "Il s'agit d'une expérimentation du {start} au {end} ; à son terme, toutes les "
        "détections et tous les incidents sont supprimés et le système s'arrête, sauf "
        "prolongation après une nouvelle analyse d'impact.",
    ),
    "retention": (
        "Detections and incidents are deleted automatically after {days} days; each "
        "deletion is recorded in the audit log.",
        "Les détections et incidents sont supprimés automatiquement au bout de {days} jours ; "
        "chaque suppression est inscrite au journal d'audit.",
    ),
}

#: the tests behind each claim (pytest node ids, relative to the repository)
EVIDENCE: dict[str, tuple[str, ...]] = {
    "audio": ("tests/compliance/test_leakage.py::test_node_run_on_speech_writes_no_audio",),
    "speech": ("tests/privacy/test_speech_guard.py::test_speech_is_detected_and_suppressed",),
    "audit": ("tests/privacy/test_retention_audit.py::test_audit_verify_detects_tampering",),
    "audit_anchored": (
        "tests/privacy/test_retention_audit.py::test_audit_verify_detects_tampering",
        "tests/web/test_claims.py::test_tamper_evident_is_said_only_with_anchoring",
    ),
    "cameras_operator": (
        "tests/compliance/test_experiment_rules.py::test_camera_auto_cue_needs_the_instrument",
    ),
    "cameras_auto": (
        "tests/compliance/test_experiment_rules.py::test_camera_auto_cue_needs_the_instrument",
    ),
    "counts": ("tests/hub/test_public_counts.py::test_public_counts_are_delayed_and_suppressed",),
    "experiment": (
        "tests/hub/test_experiment.py::test_at_the_end_the_hub_purges_everything_and_stops",
    ),
    "retention": (
        "tests/privacy/test_retention_audit.py::test_retention_deletes_expired_rows_and_audits",
    ),
}


class Claim(StrictModel):
    key: str
    text: str
    evidence: tuple[str, ...]


def audit_anchored(settings: Any) -> bool:
    """Whether the hub signs and publishes its audit head (issue 18's ``audit.anchor_key``;
    read with getattr so a hub built without that section says "not anchored")."""
    section = getattr(settings, "audit", None)
    return getattr(section, "anchor_key", None) is not None


def _day(day: date, lang: Lang) -> str:
    return day.strftime("%d/%m/%Y") if lang == "fr" else day.isoformat()


def _claim(key: str, lang: Lang, **values: object) -> Claim:
    en, fr = _TEXT[key]
    return Claim(
        key=key, text=(fr if lang == "fr" else en).format(**values), evidence=EVIDENCE[key]
    )


def public_claims(
    settings: Any,
    compliance: ComplianceSettings | None,
    lang: Lang,
    auto_cue_labels: Sequence[EventLabel] = (),
    label_names: dict[str, str] | None = None,
) -> list[Claim]:
    """The claims for the hub ``settings`` (``HubSettings``), in ``lang``.

    ``auto_cue_labels``: the classes the verification service cues without an operator;
    ``label_names``: how to write a class in ``lang`` (default: its id)."""
    names = label_names or {}
    claims = [_claim("audio", lang), _claim("speech", lang)]
    claims.append(_claim("audit_anchored" if audit_anchored(settings) else "audit", lang))
    if auto_cue_labels:
        basis = compliance.legal_basis if compliance is not None else None
        provision = (basis.audio_triggered_cameras if basis is not None else None) or "—"
        labels = ", ".join(names.get(str(label), str(label)) for label in auto_cue_labels)
        claims.append(_claim("cameras_auto", lang, labels=labels, provision=provision))
    else:
        claims.append(_claim("cameras_operator", lang))
    retention = getattr(settings, "retention", None)
    if retention is not None:
        days = max([retention.days, *retention.per_site.values()])
        claims.append(_claim("retention", lang, days=days))
    counts = web_settings(settings).public_counts
    claims.append(_claim("counts", lang, hours=f"{counts.delay_h:g}", min=counts.min_count))
    experiment = compliance.experiment if compliance is not None else None
    if experiment is not None:
        claims.append(
            _claim(
                "experiment",
                lang,
                start=_day(experiment.start, lang),
                end=_day(experiment.end, lang),
            )
        )
    return claims
