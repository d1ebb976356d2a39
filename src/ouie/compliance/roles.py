"""Which rule families apply to a node's, a hub's and a verification service's settings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from ouie.compliance.findings import Finding, dedupe
from ouie.compliance.rules.audio import audio_export_findings
from ouie.compliance.rules.cameras import camera_findings
from ouie.compliance.rules.credentials import credential_findings
from ouie.compliance.rules.drones import drone_findings
from ouie.compliance.rules.experiment import experiment_findings
from ouie.compliance.rules.legal import compliance_findings
from ouie.compliance.rules.network import hub_trust_findings, is_loopback, mqtt_findings
from ouie.compliance.rules.public import public_counts_findings
from ouie.compliance.rules.speech_guard import speech_guard_findings
from ouie.compliance.rules.zone import zone_findings
from ouie.config.compliance import ComplianceSettings, DeclaredSensor
from ouie.config.hub import HubSettings
from ouie.config.loader import ConfigError
from ouie.config.node import NodeSettings
from ouie.config.verify import VerifySettings, load_verify_settings
from ouie.config.web import web_settings
from ouie.core.labels import EventLabel


def check_node_settings(settings: NodeSettings, source: str = "") -> list[Finding]:
    found = speech_guard_findings(settings.privacy, source)
    found += audio_export_findings(settings.model_dump(mode="json"), source)
    found += credential_findings(settings.model_dump(mode="json"), source)
    publish = settings.publish
    if publish.kind == "mqtt":
        found += mqtt_findings(
            publish.mqtt.url,
            publish.mqtt.username,
            publish.mqtt.password,
            "publish.mqtt.url",
            source,
            client_certificate=publish.mqtt.tls is not None,
        )
    return found


def compliance_of(settings: HubSettings) -> ComplianceSettings:
    value = getattr(settings, "compliance", None)
    return value if isinstance(value, ComplianceSettings) else ComplianceSettings()


class VerifyUnreadable(ValueError):
    """The hub's ``verify:`` names a file that cannot be read or validated."""


def resolve_verify(settings: HubSettings, base: Path | None = None) -> VerifySettings | None:
    """The hub's verification settings: its inline ``verify:`` section or the file it names
    (relative paths tried as given, then beside the hub's config ``base``)."""
    section = settings.verify
    if section is None:
        return None
    try:
        if isinstance(section, Path):
            path = section
            if not path.is_absolute() and not path.exists() and base is not None:
                path = base / path
            return load_verify_settings(path)
        return VerifySettings.model_validate(section)
    except (ConfigError, ValidationError, OSError) as exc:
        raise VerifyUnreadable(f"verify settings {section}: {exc}") from exc


def auto_cue_labels(verify: BaseModel | None) -> list[EventLabel]:
    cueing = getattr(verify, "cueing", None)
    return list(getattr(cueing, "auto_cue_labels", None) or [])


def findings_for_hub(
    settings: HubSettings,
    sensors: Iterable[DeclaredSensor] = (),
    *,
    compliance: ComplianceSettings | None = None,
    raw: Mapping[str, Any] | None = None,
    source: str = "settings",
    verify: BaseModel | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    """Every finding for a hub's live settings.

    ``sensors``: the hub's registered sensors (positions from its registry), checked
    against the zone in addition to those declared in ``compliance.sensors``.
    ``compliance``: the section, when the settings object does not carry it itself.
    ``raw``: the YAML as written (examined for keys no model knows); default: the dump.
    ``verify``: the verification settings (``resolve_verify``), for automatic cueing.
    ``now``: the time the experiment's end is checked against (default: the clock).
    """
    comp = compliance if compliance is not None else compliance_of(settings)
    dumped = settings.model_dump(mode="json")
    text = raw if raw is not None else dumped
    retention_explicit = (
        "retention" in settings.model_fields_set and "days" in settings.retention.model_fields_set
    )
    found = compliance_findings(
        comp,
        settings.retention.days,
        settings.retention.per_site,
        retention_explicit,
        source,
    )
    declared = {s.id for s in comp.sensors}
    extra = [s for s in sensors if s.id not in declared]
    if comp.zone is not None:
        found += [f for f in zone_findings(comp.zone, extra, source) if f.rule != "zone-missing"]
    found += audio_export_findings(text, source)
    found += credential_findings(dumped, source)
    found += drone_findings(text, source)
    if settings.mqtt.enabled:
        found += mqtt_findings(
            settings.mqtt.url,
            settings.mqtt.username,
            settings.mqtt.password,
            "mqtt.url",
            source,
            client_certificate=settings.mqtt.tls is not None,
        )
    if comp.production:
        found += hub_trust_findings(settings, source)
    found += _database_findings(settings.database.url, source)
    found += experiment_findings(comp, now, source)
    found += camera_findings(comp, auto_cue_labels(verify), source)
    web = web_settings(settings)
    found += public_counts_findings(web.public_counts, web.public_page, source)
    if not is_loopback(settings.http.host) and not settings.auth.cookie_secure:
        found.append(
            Finding(
                "http-insecure",
                f"the console listens on {settings.http.host} without secure cookies; serve it "
                "over HTTPS and set auth.cookie_secure: true (or bind to 127.0.0.1)",
                "http.host",
                source,
            )
        )
    elif comp.production and settings.auth.cookie_secure is not True:
        # behind a TLS proxy on loopback the hub itself sees plain HTTP: only an explicit
        # true keeps the session cookie off any plain-HTTP request (issue 18)
        found.append(
            Finding(
                "http-insecure",
                "production mode needs auth.cookie_secure: true (the console is served over "
                "HTTPS; session cookies must never travel over plain HTTP)",
                "auth.cookie_secure",
                source,
            )
        )
    return dedupe(found)


def _database_findings(url: str, source: str) -> list[Finding]:
    return [] if "://" not in url else credential_findings({"database": {"url": url}}, source)


def check_verify_settings(
    settings: BaseModel, raw: Mapping[str, Any] | None = None, source: str = "", prefix: str = ""
) -> list[Finding]:
    """Verification actions (``ouie.config.verify.VerifySettings``): outputs that would
    carry incident data in clear text beyond loopback, weak secrets, audio options."""
    dumped = settings.model_dump(mode="json")
    text = raw if raw is not None else dumped
    found = audio_export_findings(text, source)
    found += credential_findings(dumped, source)
    found += drone_findings(text, source)
    for index, output in enumerate(dumped.get("outputs", [])):
        where = f"outputs[{index}].url"
        url = str(output.get("url") or "")
        if output.get("type") == "mqtt":
            secret = output.get("password") or output.get("password_enc")
            found += mqtt_findings(url, output.get("username"), secret, where, source)
        elif url.startswith("http://") and not is_loopback(urlsplit(url).hostname):
            found.append(
                Finding(
                    "http-insecure",
                    f"incident data would go to {urlsplit(url).hostname} over plain HTTP; "
                    "use https://",
                    where,
                    source,
                )
            )
    return [
        Finding(f.rule, f.message, prefix + f.where if f.where else f.where, f.source, f.severity)
        for f in found
    ]
