"""``ouie dpia``: the data protection impact assessment (GDPR art. 35) generated from the
live configuration and a measured ``ouie eval privacy`` run, plus the art. 30 register
entry, the public notice (French and English) and the sensor map.

Nothing in these documents is typed by hand twice: the controller, legal basis, zone,
hours, retention and sensors come from the hub's ``compliance:`` section; the data
inventory is generated from the wire message schemas (``ALL_MESSAGE_MODELS``) and, where
the hub is installed, from its database tables; the access list from the hub's permission
table; the privacy figures from the evaluation JSON; the compliance verdict from the same
rules as ``ouie check``. Each risk names the measures that answer it and the tests that
evidence them (``EVIDENCE`` lists test ids, and a test checks they exist).

Outputs (in ``--out``): ``dpia.md``, ``dpia.pdf``, ``dpia-pia.json`` (close to the export
format of the CNIL's PIA tool: answers by section reference 111–346, measures,
evaluations), ``art30-register.md``, ``notice-fr.md``, ``notice-en.md``, ``sensor-map.png``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ouie.compliance.check import check_config, cross_findings
from ouie.compliance.findings import Finding
from ouie.compliance.leakage import PrivacyReport, read_report
from ouie.compliance.loading import CheckedConfig, load_for_check
from ouie.compliance.roles import VerifyUnreadable, auto_cue_labels, resolve_verify
from ouie.config.compliance import LAWFUL_BASIS_TEXT, ComplianceSettings, Zone
from ouie.config.hub import HubSettings
from ouie.config.node import NodeSettings
from ouie.core.geometry import LocalFrame
from ouie.core.labels import EVENT_LABELS, IMPULSIVE_LABELS, EventLabel
from ouie.core.messages import ALL_MESSAGE_MODELS
from ouie.node.pipeline import GUARD_AFTER_S, GUARD_BEFORE_S, WEAK_GUARD_AFTER_S
from ouie.privacy.message_guard import audit_models
from ouie.privacy.speech_guard import NEARBY_SPEECH_S
from ouie.web.claims import audit_anchored, public_claims

TEMPLATES = Path(__file__).with_name("templates")


class DpiaError(ValueError):
    """The inputs cannot make a DPIA (no hub config, unreadable evaluation JSON...)."""


# --------------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class Evidence:
    test: str  # pytest node id (file::function), relative to the repository
    shows: str


#: The tests behind each claim. ``tests/compliance/test_dpia.py`` checks every one exists.
EVIDENCE: dict[str, Evidence] = {
    "message_guard": Evidence(
        "tests/privacy/test_message_guard.py::test_no_wire_message_can_carry_samples_or_features",
        "no wire message schema can hold a sequence, bytes or an unbounded string",
    ),
    "message_smuggling": Evidence(
        "tests/privacy/test_message_guard.py::test_guard_catches_each_way_to_smuggle_content",
        "the schema guard catches lists, bytes, free text, nested arrays and open mappings",
    ),
    "speech_guard": Evidence(
        "tests/privacy/test_speech_guard.py::test_speech_is_detected_and_suppressed",
        "speech in 6 languages × 3 voices is recognised and non-impulsive events over it "
        "are suppressed",
    ),
    "node_no_audio": Evidence(
        "tests/compliance/test_leakage.py::test_node_run_on_speech_writes_no_audio",
        "the real node run over speech writes no audio file (fanotify/inotify + scan)",
    ),
    "watch_catches": Evidence(
        "tests/compliance/test_leakage.py::test_file_watch_catches_every_way_to_write_audio",
        "the file watch finds audio written plainly, under a wrong name, or deleted at once",
    ),
    "eval_privacy": Evidence(
        "tests/compliance/test_leakage.py::test_eval_privacy_cli_writes_the_figures",
        "`ouie eval privacy` writes the figures this DPIA quotes",
    ),
    "check_rules": Evidence(
        "tests/compliance/test_check.py::test_each_bad_example_fails_with_its_rule",
        "`ouie check` refuses each unlawful or unsafe configuration with its rule",
    ),
    "check_production": Evidence(
        "tests/compliance/test_check.py::test_production_example_passes",
        "the production example passes every rule",
    ),
    "hub_refuses": Evidence(
        "tests/compliance/test_check.py::test_production_hub_refuses_to_start_on_findings",
        "a production hub refuses to start while any finding remains",
    ),
    "scrub": Evidence(
        "tests/privacy/test_scrub.py::test_log_lines_never_carry_credentials",
        "passwords and tokens are scrubbed from every log line",
    ),
    "retention": Evidence(
        "tests/privacy/test_retention_audit.py::test_retention_deletes_expired_rows_and_audits",
        "data older than the limit is deleted and the purge is recorded in the audit log",
    ),
    "audit_verify": Evidence(
        "tests/privacy/test_retention_audit.py::test_audit_verify_detects_tampering",
        "an edited, deleted or reordered audit entry is detected",
    ),
    "dpia_inventory": Evidence(
        "tests/compliance/test_dpia.py::test_inventory_lists_every_message_field",
        "the data inventory below lists every field of every wire message",
    ),
    "roles": Evidence(
        "tests/hub/test_api.py::test_wrong_role_gets_403_and_right_role_passes_the_guard",
        "every API route refuses the roles the permission table does not grant",
    ),
    "unauthenticated": Evidence(
        "tests/hub/test_api.py::test_unauthenticated_requests_get_401",
        "no incident data without authentication",
    ),
    "reads_audited": Evidence(
        "tests/hub/test_api.py::test_incident_workflow_feedback_stats_and_audit",
        "reading and working an incident leaves audit entries",
    ),
    "auditor_export": Evidence(
        "tests/privacy/test_retention_audit.py::test_auditor_can_export_the_log_and_an_operator_cannot",
        "the auditor role exports the log for a regulator; an operator cannot read it",
    ),
    "spool": Evidence(
        "tests/integration/test_node_mqtt.py::test_broker_restart_mid_stream_loses_no_event_and_keeps_order",
        "a broker restart mid-stream loses no event (store-and-forward spool)",
    ),
    "hub_sigkill": Evidence(
        "tests/integration/test_hub_reliability.py::test_sigkill_mid_ingest_loses_nothing",
        "a hub killed mid-ingest loses no acknowledged event",
    ),
}


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class ZoneMetrics:
    area_m2: float
    perimeter_m: float
    lat0: float  # the zone's mean vertex: origin of the map's local metres
    lon0: float


def zone_metrics(zone: Zone) -> ZoneMetrics:
    area, perimeter = zone.area_perimeter_m()
    lat0 = sum(p[0] for p in zone.polygon) / len(zone.polygon)
    lon0 = sum(p[1] for p in zone.polygon) / len(zone.polygon)
    return ZoneMetrics(area, perimeter, lat0, lon0)


#: the map's words, by language (the dossier is French by default)
_MAP_TEXT = {
    "en": ("declared zone", "sensor", "metres east", "metres north", "Sensors and listening zone"),
    "fr": (
        "zone déclarée",
        "capteur",
        "mètres vers l'est",
        "mètres vers le nord",
        "Capteurs et zone d'écoute",
    ),
}


def sensor_map(compliance: ComplianceSettings, out: Path, lang: str = "en") -> Path:
    """A PNG of the declared zone and sensors (local metres; no base map, no network)."""
    zone_word, sensor_word, east_word, north_word, title = _MAP_TEXT.get(lang, _MAP_TEXT["en"])
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 6.0), dpi=150)
    ax = fig.add_subplot(1, 1, 1)
    zone = compliance.zone
    sensors = compliance.sensors
    if zone is not None:
        m = zone_metrics(zone)
        lat0, lon0 = m.lat0, m.lon0
    elif sensors:
        lat0 = sum(s.lat for s in sensors) / len(sensors)
        lon0 = sum(s.lon for s in sensors) / len(sensors)
    else:
        lat0, lon0 = 0.0, 0.0
    frame = LocalFrame(lat0, lon0)
    if zone is not None:
        pts = [frame.to_en(lat, lon) for lat, lon in zone.polygon]
        xs = [p[0] for p in pts] + [pts[0][0]]
        ys = [p[1] for p in pts] + [pts[0][1]]
        ax.fill(xs, ys, color="#cfe3f5", alpha=0.6, label=f"{zone_word}: {zone.name}")
        ax.plot(xs, ys, color="#2a6fb0", linewidth=1.2)
    for sensor in sensors:
        x, y = frame.to_en(sensor.lat, sensor.lon)
        ax.plot(x, y, marker="o", color="#c0392b", markersize=6)
        ax.annotate(sensor.id, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=7)
    if sensors:
        ax.plot([], [], marker="o", color="#c0392b", linestyle="", label=sensor_word)
    ax.set_aspect("equal")
    ax.set_xlabel(east_word)
    ax.set_ylabel(north_word)
    ax.grid(True, linewidth=0.3, alpha=0.6)
    ax.set_title(f"{title} ({lat0:.5f} N, {lon0:.5f} E)", fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(out))
    return out


# --------------------------------------------------------------------------- inventory


@dataclass(frozen=True)
class InventoryField:
    message: str
    field: str
    type: str
    description: str
    category: str


_CATEGORIES = {
    "site": "location (zone identifier)",
    "sensor_id": "equipment identifier",
    "label": "event class",
    "onset": "time",
    "offset": "time",
    "sent_at": "time",
    "issued_at": "time",
    "message_id": "technical identifier",
    "sequence": "technical counter",
    "schema_version": "technical",
    "kind": "technical",
    "model_id": "technical",
    "peak_score": "classifier confidence",
    "level_dbfs": "sound level (a number)",
    "level_db_spl": "sound level (a number)",
    "speech_present": "yes/no flag (nothing of the speech itself is kept)",
    "thresholds": "detection settings",
    "start": "time (the window an onset request asks about)",
    "end": "time (the window an onset request asks about)",
    "request_id": "technical identifier",
    "incident_id": "technical identifier",
    "index": "technical counter",
    "count": "technical counter",
    "prominence_db": "sound level (a number)",
    "signature": "technical (authenticity)",
}


def _schema_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).split("/")[-1]
    if "anyOf" in schema:
        return " | ".join(_schema_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return "one of: " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return f"constant {schema['const']!r}"
    kind = str(schema.get("type", "?"))
    if schema.get("format"):
        kind += f" ({schema['format']})"
    if "pattern" in schema:
        kind += " (pattern)"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        kind = "map event class → number"
    return kind


def message_inventory(
    models: Sequence[type[BaseModel]] = ALL_MESSAGE_MODELS,
) -> list[InventoryField]:
    """Every field of every wire message, from the schemas themselves."""
    rows: list[InventoryField] = []
    for model in models:
        schema = model.model_json_schema()
        for name, sub in schema.get("properties", {}).items():
            info = model.model_fields[name]
            rows.append(
                InventoryField(
                    message=model.__name__,
                    field=name,
                    type=_schema_type(sub),
                    description=(info.description or "").replace("|", "/"),
                    category=_CATEGORIES.get(name, "technical (node health)"),
                )
            )
    return rows


@dataclass(frozen=True)
class StoredTable:
    name: str
    columns: str
    free_text: list[str]


def hub_storage() -> list[StoredTable]:
    """The hub's database tables and columns (empty when the hub is not installed)."""
    try:
        from sqlalchemy import Text

        from ouie.hub.db import Base
    except ImportError:
        return []
    tables = []
    for table in Base.metadata.sorted_tables:
        free = [c.name for c in table.columns if isinstance(c.type, Text)]
        tables.append(StoredTable(table.name, ", ".join(c.name for c in table.columns), free))
    return tables


def access_list() -> list[dict[str, str]]:
    """Role → permissions, from the hub's permission table when installed."""
    descriptions = {
        "viewer": "sees incidents, sensors and statistics",
        "operator": "works incidents (acknowledge, verify, confirm, dismiss) and gives feedback",
        "supervisor": "as operator, plus sensor thresholds, users (read), ingest health; "
        "the only role that may approve a drone mission",
        "auditor": "reads the audit log and exports it for a regulator; no incident actions",
        "admin": "administers users, sensors and the system",
    }
    try:
        from ouie.hub.auth import PERMISSIONS
    except ImportError:
        return [
            {"role": r, "does": d, "permissions": "(hub not installed)"}
            for r, d in descriptions.items()
        ]
    return [
        {
            "role": role.value,
            "does": descriptions.get(role.value, ""),
            "permissions": ", ".join(sorted(p.value for p in perms)),
        }
        for role, perms in PERMISSIONS.items()
    ]


# --------------------------------------------------------------------------- risks


@dataclass
class Risk:
    id: str
    title: str
    threat: str
    impacts: str
    sources: str
    measures: list[str]
    evidence: list[str]  # keys of EVIDENCE
    figures: list[str] = field(default_factory=list)
    severity: int = 2  # CNIL scale 1 negligible, 2 limited, 3 significant, 4 maximum
    likelihood: int = 1
    pia_section: str = "32"  # 32 illegitimate access, 33 modification, 34 disappearance


GAUGE = {1: "negligible", 2: "limited", 3: "significant", 4: "maximum"}


def risks(
    report: PrivacyReport,
    comp: ComplianceSettings,
    hub: HubSettings,
    auto_cue: list[EventLabel] | None = None,
    anchored: bool = False,
) -> list[Risk]:
    """R1–R9; what R5, R6 and R8 say follows the configuration (automatic cueing, audit
    anchoring), never a fixed text."""
    cue_labels = ", ".join(str(label) for label in auto_cue or [])
    provision = comp.legal_basis.audio_triggered_cameras if comp.legal_basis else None
    cameras = (
        f"Cameras are turned automatically towards {cue_labels} (actor system:auto-cue, "
        f"audited), under the provision the controller declares: {provision}. ouie does not "
        "record video."
        if auto_cue
        else "Camera cueing is an operator action, audited; no class is cued automatically "
        "(rule camera-auto-cue refuses it in production without a legal provision); ouie "
        "does not record video."
    )
    audit_log = (
        "Hash-chained audit log whose head is signed with a key outside the database and "
        "published (anchoring): a rewrite of the log is detected against a recorded anchor."
        if anchored
        else "Hash-chained audit log: `ouie audit verify` detects an edited, deleted or "
        "reordered entry, but not a full rewrite by someone with database write access "
        "(audit anchoring, audit.anchor_key, is off)."
    )
    rate = (
        "n/a (the classifier proposed no event on speech)"
        if report.suppression_rate is None
        else f"{report.suppression_rate:.1%}"
    )
    speech_fig = (
        f"{report.events_on_speech} event(s) on {report.speech_recordings} speech recordings "
        f"({report.speech_seconds / 60:.1f} min; espeak-ng voices and real speech); "
        f"candidates {report.speech_candidates}, suppression rate {rate}"
    )
    files_fig = (
        f"{report.audio_files_written} audio file(s) written during the run "
        f"({report.watch_method} over {', '.join(report.watched_roots)}; "
        f"{report.files_checked} written files examined)"
    )
    bytes_fig = (
        f"{report.bytes_per_hour / 1000:.1f} kB per hour of messages; largest message "
        f"{report.largest_message_bytes} bytes; {report.messages_with_arrays} message(s) "
        "with an array"
    )
    speech_ok = report.events_on_speech == 0 and report.audio_files_written == 0
    return [
        Risk(
            "R1",
            "Capture of conversations (speech)",
            "Someone listens to, records or transcribes what people say near a sensor.",
            "Disclosure of private conversations; people avoid speaking freely in the street.",
            "Operators, maintainers, an attacker on a sensor or the network, the supplier.",
            [
                "Audio exists only in a 4 s ring buffer in the node's RAM; no code path writes "
                "it to disk or network.",
                "Messages carry metadata only; the schemas cannot hold samples, features, "
                "embeddings or free text.",
                "The speech guard suppresses any non-impulsive event heard over speech, and "
                "any weak event heard beside it; there is no speech class.",
                "`ouie check` refuses any option that would store or export audio.",
            ],
            [
                "message_guard",
                "message_smuggling",
                "dpia_inventory",
                "speech_guard",
                "node_no_audio",
                "watch_catches",
                "eval_privacy",
                "check_rules",
            ],
            [speech_fig, files_fig, bytes_fig],
            severity=4,
            likelihood=1 if speech_ok else 2,
        ),
        Risk(
            "R2",
            "Function creep towards speech or other uses",
            "The system is later extended to record, transcribe or identify voices, or to "
            "detect behaviours beyond the declared purposes.",
            "Mass surveillance of the public space; loss of trust.",
            "The controller, the supplier, a change of policy.",
            [
                "The event vocabulary is closed (8 classes, no speech label); the node cannot "
                "emit anything else.",
                "`privacy.speech_guard` cannot be switched off and its thresholds cannot be "
                "loosened (rule speech-guard-weakened).",
                "Any audio-export option fails `ouie check`; a production hub refuses to start.",
                "The source is open: a change would be visible in review and fail these tests.",
            ],
            ["message_guard", "check_rules", "check_production", "hub_refuses"],
            severity=4,
            likelihood=1,
        ),
        Risk(
            "R3",
            "Chilling effect on public freedoms",
            "Knowing that the street is 'listened to' deters people from speaking, gathering, "
            "demonstrating or coming and going.",
            "Restriction of freedoms of expression, assembly, demonstration and movement.",
            "The processing itself, as perceived by the public.",
            [
                "Only the declared zone is covered, during the declared hours "
                "(rule sensor-outside-zone).",
                "Signage and a public notice (FR/EN) say exactly what is and is not collected.",
                "No identification of persons; no audio; no speech.",
                "Detections are deleted after the retention period.",
            ],
            ["check_rules", "node_no_audio"],
            [speech_fig],
            severity=3,
            likelihood=2,
        ),
        Risk(
            "R4",
            "Breach of the hub's data",
            "An attacker or an insider copies the incident database or intercepts messages.",
            "Disclosure of where and when incidents happened; operator accounts exposed.",
            "External attackers, insiders.",
            [
                "The data are event metadata (class, time, sensor, level), not audio.",
                "MQTT beyond loopback needs TLS and authentication; the console needs HTTPS "
                "(rules mqtt-insecure, http-insecure).",
                "No default or weak credential (rule weak-credential); argon2id password hashes.",
                "Credentials never reach the logs (log scrubbing).",
            ],
            ["check_rules", "scrub", "unauthenticated"],
            [bytes_fig],
            severity=2,
            likelihood=2,
        ),
        Risk(
            "R5",
            "Operator curiosity and misuse",
            "An operator browses incidents out of curiosity or to follow someone.",
            "Profiling of a neighbourhood or of people linked to incidents.",
            "Operators, supervisors, administrators.",
            [
                "Role-based access (viewer, operator, supervisor, auditor, admin), enforced "
                "route by route.",
                "Every read of incident data and every change is written to the audit log. "
                + audit_log,
                "The auditor role can export the log for a regulator.",
            ],
            ["roles", "reads_audited", "audit_verify", "auditor_export"],
            severity=2,
            likelihood=2,
        ),
        Risk(
            "R6",
            "Drone and camera overreach",
            "An alarm automatically turns cameras or sends a drone, extending surveillance "
            "beyond the event.",
            "Video surveillance of people near a false alarm; intrusive flights.",
            "Automation, operators under pressure.",
            [
                "A drone launches only on the explicit approval of a supervisor; approval and "
                "every command are audited (rule drone-approval-unsupervised).",
                cameras,
            ],
            ["check_rules"],
            severity=3,
            likelihood=2 if auto_cue else 1,
        ),
        Risk(
            "R7",
            "Keeping data longer than allowed",
            "Detections and incidents accumulate beyond the legal maximum.",
            "Disproportionate history of events in the zone.",
            "Missing or mis-set retention.",
            [
                f"Retention {hub.retention.days} days (legal maximum "
                f"{comp.legal_max_retention_days} days), enforced by a scheduled purge whose "
                "counts are audited (rules retention-missing, retention-excessive).",
            ],
            ["retention", "check_rules"],
            severity=2,
            likelihood=1,
        ),
        Risk(
            "R8",
            "Unwanted modification of records",
            "Incident history or the audit log is altered to hide misuse.",
            "Accountability lost.",
            "Insiders with database access.",
            [audit_log],
            ["audit_verify"],
            severity=2,
            likelihood=1 if anchored else 2,
            pia_section="33",
        ),
        Risk(
            "R9",
            "Loss of events",
            "Events are lost when the broker or hub is down.",
            "An emergency is not signalled.",
            "Network or service failures.",
            [
                "Store-and-forward spool on each node, MQTT QoS 1 acknowledged after commit.",
            ],
            ["spool", "hub_sigkill"],
            severity=2,
            likelihood=1,
            pia_section="34",
        ),
    ]


# --------------------------------------------------------------------------- context


@dataclass
class Inputs:
    hub_path: Path
    hub: HubSettings
    compliance: ComplianceSettings
    nodes: list[tuple[Path, NodeSettings]]
    findings: list[Finding]
    report: PrivacyReport
    report_path: Path
    auto_cue: list[EventLabel] = field(default_factory=list)
    anchored: bool = False


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_inputs(configs: Sequence[Path], eval_json: Path) -> Inputs:
    checked: list[CheckedConfig] = []
    findings: list[Finding] = []
    for path in configs:
        config, prior = load_for_check(path)
        checked.append(config)
        findings += check_config(config, prior)
    findings += cross_findings(checked)
    hubs = [c for c in checked if c.hub is not None]
    if not hubs:
        raise DpiaError("give the hub's config (with its compliance: section) in --config")
    if len(hubs) > 1:
        raise DpiaError("give exactly one hub config")
    hub = hubs[0]
    assert hub.hub is not None
    nodes = [(c.path, c.node) for c in checked if c.node is not None]
    verify = hub.verify
    if verify is None:
        try:
            verify = resolve_verify(hub.hub, hub.path.parent)
        except VerifyUnreadable:
            verify = None  # `ouie check` (above) reports it
    try:
        report = read_report(eval_json)
    except (OSError, ValueError) as exc:
        raise DpiaError(f"{eval_json}: not an `ouie eval privacy` JSON ({exc})") from exc
    return Inputs(
        hub_path=hub.path,
        hub=hub.hub,
        compliance=hub.compliance or ComplianceSettings(),
        nodes=nodes,
        findings=findings,
        report=report,
        report_path=eval_json,
        auto_cue=auto_cue_labels(verify),
        anchored=audit_anchored(hub.hub),
    )


def _hours_text(zone: Zone | None) -> str:
    if zone is None or not zone.hours:
        return "around the clock"
    return ", ".join(zone.hours)


def build_context(inputs: Inputs, configs: Sequence[Path]) -> dict[str, Any]:
    comp = inputs.compliance
    hub = inputs.hub
    report = inputs.report
    zone = comp.zone
    metrics = zone_metrics(zone) if zone is not None else None
    area_km2 = metrics.area_m2 / 1e6 if metrics else None
    inventory = message_inventory()
    guard_problems = audit_models(ALL_MESSAGE_MODELS)
    risk_list = risks(report, comp, hub, inputs.auto_cue, inputs.anchored)
    node_guard = [
        {
            "path": str(path),
            "sensor": node.sensor_id,
            "speech_probability": node.privacy.speech_probability,
            "speech_fraction": node.privacy.speech_fraction,
            "impulsive_threshold": node.privacy.impulsive_threshold,
            "ring_buffer_s": node.ring_buffer_s,
        }
        for path, node in inputs.nodes
    ]
    from ouie import __version__

    now = datetime.now(UTC)
    return {
        "generated_at": now.strftime("%Y-%m-%d %H:%M UTC"),
        "generated_at_iso": now.isoformat(timespec="seconds"),
        "ouie_version": __version__,
        "configs": [{"path": str(p), "sha256": _sha256(p)} for p in configs],
        "eval": {"path": str(inputs.report_path), "sha256": _sha256(inputs.report_path)},
        "c": comp,
        "hub": hub,
        "basis_text": LAWFUL_BASIS_TEXT.get(comp.legal_basis.article, "")
        if comp.legal_basis
        else "",
        "zone": zone,
        "zone_area_m2": metrics.area_m2 if metrics else None,
        "zone_area_ha": metrics.area_m2 / 1e4 if metrics else None,
        "zone_perimeter_m": metrics.perimeter_m if metrics else None,
        "hours_text": _hours_text(zone),
        "hours_per_day": zone.hours_per_day() if zone else 24.0,
        "sensor_density_km2": (len(comp.sensors) / area_km2) if area_km2 else None,
        "labels": [label.value for label in EVENT_LABELS],
        "impulsive": sorted(label.value for label in IMPULSIVE_LABELS),
        "guard_before_s": GUARD_BEFORE_S,
        "guard_after_s": GUARD_AFTER_S,
        "weak_guard_after_s": WEAK_GUARD_AFTER_S,
        "nearby_speech_s": NEARBY_SPEECH_S,
        "inventory": inventory,
        "message_models": [m.__name__ for m in ALL_MESSAGE_MODELS],
        "guard_problems": guard_problems,
        "storage": hub_storage(),
        "access": access_list(),
        "r": report,
        "rate_text": "n/a: no candidate event on speech"
        if report.suppression_rate is None
        else f"{report.suppression_rate:.1%}",
        "risks": risk_list,
        "gauge": GAUGE,
        "evidence": EVIDENCE,
        "findings": inputs.findings,
        "errors": [f for f in inputs.findings if f.severity == "error"],
        "node_guard": node_guard,
        "retention_sites": sorted(hub.retention.per_site.items()),
        "experiment": comp.experiment,
        "compliance_digest": comp.digest(),
        "auto_cue": [str(label) for label in inputs.auto_cue],
        "anchored": inputs.anchored,
        "claims_fr": public_claims(hub, comp, "fr", inputs.auto_cue),
        "claims_en": public_claims(hub, comp, "en", inputs.auto_cue),
    }


# --------------------------------------------------------------------------- rendering


def _environment() -> Any:
    try:
        import jinja2
    except ImportError as exc:  # pragma: no cover - jinja2 ships with the web extra
        raise DpiaError("ouie dpia needs Jinja2 (pip install 'ouie[web]')") from exc
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=False,  # Markdown, not HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = lambda v, d=0: f"{v:,.{d}f}".replace(",", " ")
    env.filters["cell"] = lambda v: str(v).replace("|", "/").replace("\n", " ")
    # French typography for the dossier: decimal comma, space between thousands
    env.filters["fr"] = lambda v, d=1: f"{v:,.{d}f}".replace(",", " ").replace(".", ",")
    env.filters["pct"] = lambda v, d=1: f"{v * 100:.{d}f} %"
    env.filters["pct_fr"] = lambda v, d=1: f"{v * 100:.{d}f} %".replace(".", ",")
    return env


def render(template: str, context: dict[str, Any]) -> str:
    return str(_environment().get_template(template).render(**context))


def pia_json(context: dict[str, Any]) -> dict[str, Any]:
    """The DPIA in the shape of the CNIL PIA tool's export: ``pia``, ``answers`` keyed by
    the tool's question references (111–346), ``measures``, ``evaluations``."""
    comp: ComplianceSettings = context["c"]
    report: PrivacyReport = context["r"]
    now = datetime.now(UTC).isoformat()

    def text(ref: int, value: str) -> dict[str, Any]:
        return {"reference_to": ref, "data": {"text": value, "gauge": None, "list": []}}

    def items(ref: int, values: list[str]) -> dict[str, Any]:
        return {"reference_to": ref, "data": {"text": None, "gauge": None, "list": values}}

    def gauge(ref: int, value: int, why: str) -> dict[str, Any]:
        return {"reference_to": ref, "data": {"text": why, "gauge": value, "list": []}}

    inventory = "; ".join(f"{f.message}.{f.field} ({f.category})" for f in context["inventory"])
    purposes = " ".join(p.en for p in comp.purposes)
    answers = [
        text(111, "Acoustic event detection in the public space: " + purposes),
        text(
            112,
            f"Controller: {comp.controller.name if comp.controller else '(missing)'}; "
            f"DPO: {comp.dpo.email if comp.dpo else '(missing)'}; "
            f"processors: {', '.join(comp.processors) or 'none'}.",
        ),
        text(113, "GDPR; CNIL guidance on sound sensors in public space; ouie check rules."),
        text(121, "Event metadata only: " + inventory + ". No audio, speech or features."),
        text(
            122,
            "Sound is analysed in the sensor's RAM (4 s ring buffer) and discarded; an event "
            "message is published to the hub, fused into incidents, kept "
            f"{context['hub'].retention.days} days, then deleted by the retention job.",
        ),
        text(123, "Sensors on street furniture; MQTT broker; hub server with its database."),
        text(211, purposes),
        text(
            212,
            f"GDPR art. {comp.legal_basis.article} ({context['basis_text']}); "
            f"{comp.legal_basis.instrument}"
            if comp.legal_basis
            else "(missing)",
        ),
        text(
            213,
            f"8 event classes only; zone {context['zone_area_ha'] or 0:.1f} ha, "
            f"{context['hours_text']}; {report.bytes_per_hour / 1000:.1f} kB/h of metadata "
            f"per sensor; events on speech measured: {report.events_on_speech}.",
        ),
        text(214, "Operator feedback (true/false alarm) drives per-sensor precision statistics."),
        text(
            215,
            f"{context['hub'].retention.days} days (legal maximum "
            f"{comp.legal_max_retention_days} days), purged automatically and audited.",
        ),
        text(221, "Street signage and public notice in French and English; transparency page."),
        text(222, "Not applicable: the processing does not rest on consent."),
        text(223, f"Requests to the DPO ({comp.dpo.email if comp.dpo else '(missing)'})."),
        text(224, "Requests to the DPO; data are deleted after the retention period."),
        text(225, "Requests to the DPO (right to object, art. 21)."),
        text(226, ", ".join(comp.processors) or "No processor."),
        text(227, "Data leave the EEA." if comp.transfers_outside_eea else "No transfer."),
    ]
    by_section: dict[str, list[Risk]] = {}
    for risk in context["risks"]:
        by_section.setdefault(risk.pia_section, []).append(risk)
    for section, base in (("32", 320), ("33", 330), ("34", 340)):
        group = by_section.get(section, [])
        answers += [
            items(base + 1, [r.impacts for r in group]),
            items(base + 2, [r.threat for r in group]),
            items(base + 3, [r.sources for r in group]),
            items(base + 4, [m for r in group for m in r.measures]),
            gauge(
                base + 5,
                max((r.severity for r in group), default=1),
                "; ".join(f"{r.id}: {GAUGE[r.severity]}" for r in group),
            ),
            gauge(
                base + 6,
                max((r.likelihood for r in group), default=1),
                "; ".join(f"{r.id}: {GAUGE[r.likelihood]}" for r in group),
            ),
        ]
    measures = [
        {
            "title": f"{r.id} — {r.title}",
            "content": " ".join(r.measures)
            + " Evidence: "
            + "; ".join(EVIDENCE[k].test for k in r.evidence),
            "placeholder": "",
        }
        for r in context["risks"]
    ]
    return {
        "pia": {
            "name": f"ouie acoustic event detection — {comp.zone.name if comp.zone else ''}",
            "author_name": "generated by ouie dpia",
            "evaluator_name": "",
            "validator_name": "",
            "dpos_names": comp.dpo.name if comp.dpo and comp.dpo.name else "",
            "status": 0,
            "created_at": now,
            "updated_at": now,
        },
        "answers": answers,
        "measures": measures,
        "evaluations": [],
        "comments": [],
        "ouie": {
            "generated_at": context["generated_at_iso"],
            "configs": context["configs"],
            "eval": context["eval"],
            # what `ouie experiment extend` checks: this DPIA assesses exactly this
            # configuration (its compliance digest) and this experiment's dates
            "experiment": None
            if comp.experiment is None
            else {
                "start": comp.experiment.start.isoformat(),
                "end": comp.experiment.end.isoformat(),
                "compliance_digest": context["compliance_digest"],
                "generated_at": context["generated_at_iso"],
            },
            "figures": report.model_dump(
                include={
                    "events_on_speech",
                    "speech_seconds",
                    "suppression_rate",
                    "bytes_per_hour",
                    "largest_message_bytes",
                    "audio_files_written",
                }
            ),
        },
    }


def generate(configs: Sequence[Path], eval_json: Path, out: Path, pdf: bool = True) -> list[Path]:
    """Write every document into ``out``; returns the paths written."""
    inputs = load_inputs(configs, eval_json)
    context = build_context(inputs, configs)
    out.mkdir(parents=True, exist_ok=True)
    written = [sensor_map(inputs.compliance, out / "sensor-map.png")]
    documents = {
        "dpia.md": "dpia.md.j2",
        "art30-register.md": "art30.md.j2",
        "notice-fr.md": "notice_fr.md.j2",
        "notice-en.md": "notice_en.md.j2",
    }
    for name, template in documents.items():
        path = out / name
        path.write_text(render(template, context), encoding="utf-8")
        written.append(path)
    path = out / "dpia-pia.json"
    path.write_text(
        json.dumps(pia_json(context), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    written.append(path)
    if pdf:
        from ouie.compliance.pdf import markdown_to_pdf

        title = "DPIA — ouie acoustic event detection"
        path = out / "dpia.pdf"
        markdown_to_pdf((out / "dpia.md").read_text(encoding="utf-8"), path, title, base=out)
        written.append(path)
    return written
