"""``ouie check``: the privacy and safety rules every node and hub configuration must pass.

Each rule has a stable id (``RULES``) and produces one ``Finding`` per problem, with the
config key it is about and what to do. ``ouie check CONFIG...`` prints them and exits
non-zero on any error; the hub runs the same rules at start-up (``startup_check``) and
refuses to start in production mode when any error is found.

The rules read the configuration the role would actually run with: the YAML file merged
with ``OUIE_<ROLE>__*`` environment variables. Keys that no settings model knows (a
``save_audio: true`` someone added) are still examined before the schema rejects them,
so the message says why the option is unacceptable rather than only that it is unknown.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from ouie.config.hub import HubSettings
from ouie.config.loader import ConfigError, deep_merge, read_yaml
from ouie.config.node import NodeSettings, PrivacySettings
from ouie.privacy.compliance_settings import ComplianceSettings, DeclaredSensor, Zone
from ouie.privacy.fswatch import AUDIO_SUFFIXES
from ouie.privacy.scrub import is_secret_key

log = logging.getLogger(__name__)

Severity = Literal["error", "warning"]
Role = Literal["node", "hub", "verify"]

#: Every rule, with what it protects. docs/privacy.md has one line per rule and
#: examples/bad/ one failing config per rule (tests check both).
RULES: dict[str, str] = {
    "config-invalid": "the file must be a valid node or hub configuration",
    "role-unknown": "the file must be recognisable as a node or a hub configuration",
    "audio-export": "no option may store or export audio, spectrograms or other features",
    "speech-guard-weakened": "the speech guard's thresholds may not be loosened",
    "retention-missing": "the hub's retention period must be set explicitly",
    "retention-limit-missing": "the legal maximum retention must be configured",
    "retention-excessive": "no retention period may exceed the legal maximum",
    "controller-missing": "the controller's identity and contact must be configured",
    "dpo-missing": "the data protection officer's contact must be configured",
    "legal-basis-missing": "the legal basis (GDPR art. 6) and its instrument must be set",
    "legal-basis-unsuitable": "consent or contract cannot ground listening to a street",
    "drone-approval-unsupervised": "a drone may only launch on a supervisor's approval",
    "weak-credential": "no default, placeholder or weak password, token or secret",
    "mqtt-insecure": "MQTT beyond loopback needs TLS and authentication",
    "http-insecure": "the console beyond loopback needs TLS (secure session cookies)",
    "zone-missing": "the listening zone must be declared as a polygon",
    "sensor-outside-zone": "every sensor must stand inside the declared zone",
    "sensor-undeclared": "every node must be a sensor declared in the hub's inventory",
}


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    where: str = ""  # dotted config key
    source: str = ""  # file, or "settings" for a live settings object
    severity: Severity = "error"

    def format(self) -> str:
        head = f"{self.source}: " if self.source else ""
        key = f" {self.where}:" if self.where else ""
        return f"{head}{self.severity} [{self.rule}]{key} {self.message}"


class ComplianceError(RuntimeError):
    """Raised by ``startup_check`` when a production hub has findings."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        lines = "\n".join("  " + f.format() for f in self.findings)
        super().__init__(
            f"refusing to start in production mode: {len(self.findings)} compliance "
            f"finding(s) (run `ouie check` on this config):\n{lines}"
        )


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


# --------------------------------------------------------------------------- generic walks


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(dotted path, last key, value) for every mapping entry and list item, depth first."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            yield sub, str(key), item
            yield from _walk(item, sub)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            sub = f"{path}[{index}]"
            yield sub, "", item
            yield from _walk(item, sub)


def _tokens(key: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)
    return {t for t in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if t}


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", [], {}) and str(value).lower() not in {
        "false",
        "no",
        "off",
        "none",
        "0",
    }


# --------------------------------------------------------------------------- audio export

_AUDIO_TOKENS = frozenset(
    {
        "audio",
        "wav",
        "wave",
        "flac",
        "pcm",
        "mp3",
        "ogg",
        "clip",
        "clips",
        "snippet",
        "snippets",
        "spectrogram",
        "spectrograms",
        "spectra",
        "spectrum",
        "mel",
        "melspec",
        "logmel",
        "features",
        "embedding",
        "embeddings",
        "recording",
        "recordings",
        "sound",
        "sounds",
        "samples",
        "voice",
        "speech",
        "transcript",
        "transcripts",
    }
)
_STORE_TOKENS = frozenset(
    {
        "save",
        "store",
        "export",
        "dump",
        "keep",
        "record",
        "upload",
        "archive",
        "dir",
        "directory",
        "folder",
        "path",
        "file",
        "files",
        "retain",
        "retention",
        "write",
        "persist",
        "stream",
        "forward",
        "send",
        "publish",
        "cache",
        "bucket",
        "url",
        "endpoint",
        "sink",
        "capture",
        "enabled",
        "enable",
        "output",
        "out",
    }
)
_ALWAYS_AUDIO_KEYS = frozenset(
    {"record", "recording", "recordings", "spectrograms", "snippets", "transcripts", "clips"}
)
# Sections whose audio-ish keys describe *input* (where a node reads sound from).
_INPUT_SECTIONS = ("source",)


def _is_input_path(path: str) -> bool:
    return any(path == s or path.startswith(s + ".") for s in _INPUT_SECTIONS)


def audio_export_findings(raw: Mapping[str, Any], source: str = "") -> list[Finding]:
    """Keys that would store or export audio or features, and output paths with audio
    suffixes. Input sections (``source``) are exempt: reading sound is the job."""
    found: list[Finding] = []
    for path, key, value in _walk(raw):
        if _is_input_path(path):
            continue
        tokens = _tokens(key) if key else set()
        audio_key = key.lower() in _ALWAYS_AUDIO_KEYS or (
            bool(tokens & _AUDIO_TOKENS) and bool(tokens & _STORE_TOKENS)
        )
        if audio_key and _truthy(value):
            found.append(
                Finding(
                    "audio-export",
                    "this option would store or export audio, spectrograms or features; "
                    "ouie never keeps sound: remove it",
                    path,
                    source,
                )
            )
            continue
        if isinstance(value, str) and not audio_key:
            suffix = Path(value.split("?")[0]).suffix.lower()
            if suffix in AUDIO_SUFFIXES:
                found.append(
                    Finding(
                        "audio-export",
                        f"writes to a {suffix} file; outputs carry event metadata only",
                        path,
                        source,
                    )
                )
    return found


# --------------------------------------------------------------------------- credentials

WEAK_SECRETS = frozenset(
    {
        "",
        "admin",
        "administrator",
        "password",
        "passw0rd",
        "password1",
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "default",
        "ouie",
        "root",
        "toor",
        "guest",
        "user",
        "test",
        "demo",
        "mosquitto",
        "mqtt",
        "public",
        "private",
        "hub",
        "node",
        "postgres",
        "letmein",
        "welcome",
        "qwerty",
        "azerty",
        "123456",
        "12345678",
        "123456789",
        "1234567890",
        "000000",
        "pass",
        "xxx",
        "todo",
        "token",
    }
)
MIN_SECRET_LENGTH = 12
_PLACEHOLDER = re.compile(r"^(<.*>|\$\{.*\}|x+|\*+|.*change.?me.*|.*example.*|todo.*)$", re.I)


def weakness(secret: str, username: str | None = None) -> str | None:
    """Why ``secret`` is unacceptable as a credential, or None."""
    lowered = secret.lower()
    if lowered in WEAK_SECRETS:
        return "is a well-known default"
    if _PLACEHOLDER.match(secret):
        return "is a placeholder"
    if username and username.lower() in lowered:
        return "contains the user name"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    classes = sum(
        bool(re.search(p, secret)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]")
    )
    if len(set(secret)) < 6 or (classes < 3 and len(secret) < 20):
        return "is too simple (use 20+ random characters, or mix 3 character classes)"
    return None


def _url_credentials(url: str) -> tuple[str | None, str | None]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None, None
    if "://" not in url:
        return None, None
    return parts.username, parts.password


def credential_findings(raw: Mapping[str, Any], source: str = "") -> list[Finding]:
    """Weak secrets under secret-named keys, and weak passwords inside URLs. The secret
    itself is never repeated in the message."""
    found: list[Finding] = []
    for path, key, value in _walk(raw):
        if not isinstance(value, str | int) or isinstance(value, bool):
            continue
        text = str(value)
        if key and is_secret_key(key):
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            username = _sibling(raw, parent, ("username", "user", "login"))
            reason = weakness(text, username)
            if reason:
                found.append(Finding("weak-credential", f"the secret {reason}", path, source))
        elif isinstance(value, str):
            user, password = _url_credentials(text)
            if password is not None:
                reason = weakness(password, user)
                if reason:
                    found.append(
                        Finding(
                            "weak-credential",
                            f"the password in this URL {reason}",
                            path,
                            source,
                        )
                    )
    return found


def _sibling(raw: Mapping[str, Any], parent: str, names: Sequence[str]) -> str | None:
    node: Any = raw
    for part in parent.split(".") if parent else []:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if not isinstance(node, Mapping):
        return None
    for name in names:
        value = node.get(name)
        if isinstance(value, str) and value:
            return value
    return None


# --------------------------------------------------------------------------- network


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in {"localhost", "localhost.localdomain", "ip6-localhost"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def mqtt_findings(
    url: str, username: str | None, password: str | None, where: str, source: str = ""
) -> list[Finding]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        url_user, url_password = parts.username, parts.password
    except ValueError:
        return [Finding("config-invalid", f"{url!r} is not a URL", where, source)]
    if is_loopback(host):
        return []
    problems = []
    if parts.scheme not in {"mqtts", "ssl", "wss"}:
        problems.append("without TLS (use mqtts://)")
    user = username or url_user
    if not user:
        problems.append("without authentication (set username and password)")
    found = []
    if problems:
        found.append(
            Finding(
                "mqtt-insecure",
                f"broker {host} is not on loopback and is reached " + " and ".join(problems),
                where,
                source,
            )
        )
    elif not (password or url_password):
        # The usual production set-up: the password comes from the service's environment
        # (OUIE_<ROLE>__...__PASSWORD) at run time; checked here when that is set.
        found.append(
            Finding(
                "mqtt-insecure",
                f"user {user} has no password in this file or the environment; the service "
                "must get it from its environment (OUIE_<ROLE>__...__PASSWORD)",
                where,
                source,
                "warning",
            )
        )
    return found


# --------------------------------------------------------------------------- geometry


def point_in_polygon(lat: float, lon: float, polygon: Sequence[tuple[float, float]]) -> bool:
    """Ray casting on (lat, lon); points on an edge count as inside. Fine at city scale."""
    inside = False
    n = len(polygon)
    for i in range(n):
        (y1, x1), (y2, x2) = polygon[i], polygon[(i + 1) % n]
        if _on_segment(lat, lon, y1, x1, y2, x2):
            return True
        if (y1 > lat) != (y2 > lat):
            x_cross = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < x_cross:
                inside = not inside
    return inside


def _on_segment(py: float, px: float, y1: float, x1: float, y2: float, x2: float) -> bool:
    cross = (px - x1) * (y2 - y1) - (py - y1) * (x2 - x1)
    if abs(cross) > 1e-12:
        return False
    return min(x1, x2) - 1e-12 <= px <= max(x1, x2) + 1e-12 and (
        min(y1, y2) - 1e-12 <= py <= max(y1, y2) + 1e-12
    )


def zone_findings(
    zone: Zone | None, sensors: Iterable[DeclaredSensor], source: str = ""
) -> list[Finding]:
    sensors = list(sensors)
    if zone is None:
        return [
            Finding(
                "zone-missing",
                "declare the listening zone (compliance.zone.polygon, [[lat, lon], ...])",
                "compliance.zone",
                source,
            )
        ]
    found = []
    for sensor in sensors:
        if not point_in_polygon(sensor.lat, sensor.lon, zone.polygon):
            found.append(
                Finding(
                    "sensor-outside-zone",
                    f"sensor {sensor.id} at ({sensor.lat:.6f}, {sensor.lon:.6f}) is outside "
                    f"the declared zone {zone.name!r}",
                    f"sensors.{sensor.id}",
                    source,
                )
            )
    return found


# --------------------------------------------------------------------------- node rules

#: The loosest speech-guard settings the DPIA's measured figures still cover.
SPEECH_GUARD_LIMITS = {
    "speech_probability": ("max", 0.7),
    "speech_fraction": ("max", 0.5),
    "impulsive_threshold": ("min", 0.8),
}


def speech_guard_findings(privacy: PrivacySettings, source: str = "") -> list[Finding]:
    found = []
    for name, (kind, limit) in SPEECH_GUARD_LIMITS.items():
        value = float(getattr(privacy, name))
        loose = value > limit if kind == "max" else value < limit
        if loose:
            bound = "at most" if kind == "max" else "at least"
            found.append(
                Finding(
                    "speech-guard-weakened",
                    f"{value:g} loosens the speech guard; it must be {bound} {limit:g}",
                    f"privacy.{name}",
                    source,
                )
            )
    return found


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
        )
    return found


# --------------------------------------------------------------------------- hub rules

_DRONE_KEY = re.compile(r"drone|uav|uas|dock", re.I)
_APPROVAL_ROLE_KEYS = frozenset(
    {"approval_role", "approval_roles", "approver_role", "approver_roles", "approve_role"}
)
_APPROVAL_FLAG_KEYS = frozenset({"require_approval", "approval_required", "requires_approval"})
_AUTO_KEYS = frozenset({"auto_launch", "auto_approve", "autonomous_launch", "launch_on_alarm"})
SUPERVISOR_ROLE = "supervisor"


def _drone_sections(raw: Mapping[str, Any]) -> list[tuple[str, Any]]:
    sections: list[tuple[str, Any]] = []
    for path, key, value in _walk(raw):
        inside = any(path.startswith(p + ".") for p, _ in sections)
        if key and _DRONE_KEY.search(key) and isinstance(value, Mapping | list) and not inside:
            sections.append((path, value))
    return sections


def _enabled(section: Any) -> bool:
    if isinstance(section, list):
        return len(section) > 0
    if isinstance(section, Mapping):
        if "enabled" in section:
            return _truthy(section["enabled"])
        return len(section) > 0
    return False


def drone_findings(raw: Mapping[str, Any], source: str = "") -> list[Finding]:
    """Drone launches must wait for a supervisor: approval may not be switched off or
    given to another role, and someone must hold the supervisor role."""
    found: list[Finding] = []
    drones = [(p, s) for p, s in _drone_sections(raw) if _enabled(s)]
    if not drones:
        return found
    for base, section in drones:
        for path, key, value in _walk(section, base):
            lowered = key.lower()
            if lowered in _APPROVAL_FLAG_KEYS and not _truthy(value):
                found.append(
                    Finding(
                        "drone-approval-unsupervised",
                        "drone missions must require a supervisor's explicit approval",
                        path,
                        source,
                    )
                )
            elif lowered in _AUTO_KEYS and _truthy(value):
                found.append(
                    Finding(
                        "drone-approval-unsupervised",
                        "automatic launch bypasses the supervisor's approval",
                        path,
                        source,
                    )
                )
            elif lowered in _APPROVAL_ROLE_KEYS:
                granted = [value] if isinstance(value, str) else list(value or [])
                others = sorted({str(r) for r in granted} - {SUPERVISOR_ROLE})
                if others or not granted:
                    found.append(
                        Finding(
                            "drone-approval-unsupervised",
                            "only the supervisor role may approve a drone mission"
                            + (f" (not {', '.join(others)})" if others else ""),
                            path,
                            source,
                        )
                    )
    found += _permission_findings(raw, source)
    users = raw.get("users")
    if isinstance(users, list) and users:
        roles = {str(u.get("role", "")) for u in users if isinstance(u, Mapping)}
        if SUPERVISOR_ROLE not in roles:
            found.append(
                Finding(
                    "drone-approval-unsupervised",
                    "drones are configured but no user holds the supervisor role",
                    "users",
                    source,
                )
            )
    return found


def _permission_findings(raw: Mapping[str, Any], source: str) -> list[Finding]:
    """A ``roles:``/``permissions:`` table (role → permissions) granting drone approval or
    launch to anyone but supervisors."""
    found = []
    for table_key in ("roles", "permissions"):
        table = raw.get(table_key)
        if not isinstance(table, Mapping):
            continue
        for role, perms in table.items():
            if str(role) == SUPERVISOR_ROLE or not isinstance(perms, list):
                continue
            for perm in perms:
                text = str(perm).lower()
                if "drone" in text and any(w in text for w in ("approve", "launch", "dispatch")):
                    found.append(
                        Finding(
                            "drone-approval-unsupervised",
                            f"role {role!r} may {perm!r}; only supervisors approve drones",
                            f"{table_key}.{role}",
                            source,
                        )
                    )
    return found


_PLACEHOLDER_TEXT = re.compile(
    r"\b(todo|tbd|fixme|xxx+|changeme|lorem ipsum)\b|<[^>]*>|to be (completed|filled)"
    r"|à compléter|a completer|@example\.(com|org|net)\b",
    re.I,
)


def _placeholder(model: BaseModel | None) -> str | None:
    """The first field of ``model`` whose text is a placeholder, or None."""
    if model is None:
        return None
    for name, value in model.model_dump().items():
        if isinstance(value, str) and _PLACEHOLDER_TEXT.search(value):
            return name
    return None


def compliance_findings(
    compliance: ComplianceSettings,
    retention_days: int,
    retention_per_site: Mapping[str, int],
    retention_explicit: bool,
    source: str = "",
) -> list[Finding]:
    found: list[Finding] = []
    if compliance.controller is None:
        found.append(
            Finding(
                "controller-missing",
                "name the controller (compliance.controller: name, address, email)",
                "compliance.controller",
                source,
            )
        )
    if compliance.dpo is None:
        found.append(
            Finding(
                "dpo-missing",
                "give the DPO's contact (compliance.dpo.email)",
                "compliance.dpo",
                source,
            )
        )
    for rule, section in (
        ("controller-missing", "controller"),
        ("dpo-missing", "dpo"),
        ("legal-basis-missing", "legal_basis"),
    ):
        field = _placeholder(getattr(compliance, section))
        if field is not None:
            where = f"compliance.{section}.{field}"
            found.append(Finding(rule, "is a placeholder; fill it in", where, source))
    if compliance.legal_basis is None:
        found.append(
            Finding(
                "legal-basis-missing",
                "set the GDPR art. 6(1) basis and the instrument that grants it "
                "(compliance.legal_basis: article, instrument)",
                "compliance.legal_basis",
                source,
            )
        )
    elif compliance.legal_basis.article in {"6(1)(a)", "6(1)(b)"}:
        found.append(
            Finding(
                "legal-basis-unsuitable",
                f"art. {compliance.legal_basis.article} (consent/contract) cannot cover "
                "passers-by; public bodies use 6(1)(e) with a legal instrument",
                "compliance.legal_basis.article",
                source,
            )
        )
    if not retention_explicit:
        found.append(
            Finding(
                "retention-missing",
                "set retention.days explicitly; do not rely on a default",
                "retention.days",
                source,
            )
        )
    limit = compliance.legal_max_retention_days
    if limit is None:
        found.append(
            Finding(
                "retention-limit-missing",
                "set compliance.legal_max_retention_days (the maximum your legal basis allows)",
                "compliance.legal_max_retention_days",
                source,
            )
        )
    else:
        if retention_days > limit:
            found.append(
                Finding(
                    "retention-excessive",
                    f"{retention_days} days exceeds the legal maximum of {limit} days",
                    "retention.days",
                    source,
                )
            )
        for site, days in sorted(retention_per_site.items()):
            if days > limit:
                found.append(
                    Finding(
                        "retention-excessive",
                        f"{days} days for site {site} exceeds the legal maximum of {limit} days",
                        f"retention.per_site.{site}",
                        source,
                    )
                )
    found += zone_findings(compliance.zone, compliance.sensors, source)
    return found


def _compliance_of(settings: HubSettings) -> ComplianceSettings:
    value = getattr(settings, "compliance", None)
    return value if isinstance(value, ComplianceSettings) else ComplianceSettings()


def findings_for_hub(
    settings: HubSettings,
    sensors: Iterable[DeclaredSensor] = (),
    *,
    compliance: ComplianceSettings | None = None,
    raw: Mapping[str, Any] | None = None,
    source: str = "settings",
) -> list[Finding]:
    """Every finding for a hub's live settings.

    ``sensors``: the hub's registered sensors (positions from its registry), checked
    against the zone in addition to those declared in ``compliance.sensors``.
    ``compliance``: the section, when the settings object does not carry it itself.
    ``raw``: the YAML as written (examined for keys no model knows); default: the dump.
    """
    comp = compliance if compliance is not None else _compliance_of(settings)
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
            settings.mqtt.url, settings.mqtt.username, settings.mqtt.password, "mqtt.url", source
        )
    found += _database_findings(settings.database.url, source)
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
    return _dedupe(found)


def _database_findings(url: str, source: str) -> list[Finding]:
    return [] if "://" not in url else credential_findings({"database": {"url": url}}, source)


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.rule, finding.where, finding.message)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


def startup_check(
    settings: HubSettings,
    sensors: Iterable[DeclaredSensor] = (),
    *,
    compliance: ComplianceSettings | None = None,
) -> list[Finding]:
    """For ``ouie hub`` at start-up: log every finding; in production mode raise
    ``ComplianceError`` if any is an error (the hub must then exit non-zero)."""
    comp = compliance if compliance is not None else _compliance_of(settings)
    found = findings_for_hub(settings, sensors, compliance=comp)
    for finding in found:
        log.warning("compliance: %s", finding.format())
    if comp.production and errors(found):
        raise ComplianceError(errors(found))
    return found


# --------------------------------------------------------------------------- verify rules


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


def _verify_model() -> type[BaseModel] | None:
    try:
        from ouie.config.verify import VerifySettings
    except ImportError:  # the verify extra is not installed
        return None
    return VerifySettings


# --------------------------------------------------------------------------- files

_NODE_KEYS = frozenset(NodeSettings.model_fields) - {"privacy"}
_ROLES: tuple[Role, ...] = ("node", "hub", "verify")
_RULE_ONLY_KEYS = ("compliance", "verify", "users", "roles", "drones")
_HUB_KEYS = frozenset(HubSettings.model_fields) | frozenset(_RULE_ONLY_KEYS)
_VERIFY_KEYS = frozenset({"cameras", "docks", "flight_rules", "outputs", "cueing", "secrets"})


def detect_role(raw: Mapping[str, Any]) -> Role | None:
    """``role:`` when given, else the role whose top-level keys the file uses most."""
    hint = raw.get("role")
    for role in _ROLES:
        if hint == role:
            return role
    keys = set(raw)
    scores: dict[Role, int] = {
        "node": len(keys & _NODE_KEYS),
        "hub": len(keys & _HUB_KEYS),
        "verify": len(keys & _VERIFY_KEYS),
    }
    best = max(scores.values())
    winners = [role for role, score in scores.items() if score == best]
    return winners[0] if best > 0 and len(winners) == 1 else None


@dataclass
class CheckedConfig:
    path: Path
    role: Role | None
    raw: dict[str, Any]
    node: NodeSettings | None = None
    hub: HubSettings | None = None
    compliance: ComplianceSettings | None = None
    verify: BaseModel | None = None  # ouie.config.verify.VerifySettings


def _schema_findings(exc: ValidationError, source: str) -> list[Finding]:
    found = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        found.append(Finding("config-invalid", error["msg"], where, source))
    return found


def _env_values(model: type[BaseModel]) -> dict[str, Any]:
    from pydantic_settings import BaseSettings, EnvSettingsSource

    if not issubclass(model, BaseSettings):
        return {}
    return dict(EnvSettingsSource(model)())


def load_for_check(path: Path, role: Role | None = None) -> tuple[CheckedConfig, list[Finding]]:
    """Read one config, tell its role, validate it; schema problems become findings.
    Keys that only an audio-export rule explains are reported by that rule alone."""
    source = str(path)
    try:
        raw = read_yaml(path)
    except ConfigError as exc:
        return CheckedConfig(path, None, {}), [Finding("config-invalid", str(exc), "", source)]
    data = dict(raw)
    data.pop("role", None)
    chosen = role or detect_role(raw)
    config = CheckedConfig(path, chosen, data)
    if chosen is None:
        message = "cannot tell whether this is a node or a hub config; add `role: node|hub`"
        return config, [Finding("role-unknown", message, "", source)]
    found = audio_export_findings(data, source)
    privacy = data.get("privacy")
    guard = privacy.get("speech_guard", True) if isinstance(privacy, Mapping) else True
    if chosen == "node" and not _truthy(guard):
        found.append(
            Finding(
                "speech-guard-weakened",
                "the speech guard cannot be switched off",
                "privacy.speech_guard",
                source,
            )
        )
    flagged = {f.where for f in found}
    verify_model = _verify_model()
    if chosen == "verify" and verify_model is None:
        message = "the verify extra is not installed; cannot validate this file"
        return config, [*found, Finding("config-invalid", message, "", source)]
    model: type[BaseModel] = NodeSettings if chosen == "node" else HubSettings
    if chosen == "verify" and verify_model is not None:
        model = verify_model
    merged = deep_merge(data, _env_values(model))
    compliance_raw = None
    verify_raw = None
    if chosen == "hub":
        # Sections the rules read from the raw file that the hub's settings model may not
        # carry (yet): validated here (compliance, verify) or examined raw (drones, users,
        # roles).
        for key in _RULE_ONLY_KEYS:
            if key not in HubSettings.model_fields and key in merged:
                value = merged.pop(key)
                if key == "compliance":
                    compliance_raw = value
                elif key == "verify":
                    verify_raw = value
        if isinstance(merged.get("verify"), dict):  # the hub's own `verify:` section, inline
            verify_raw = merged["verify"]
    try:
        settings = model.model_validate(merged)
    except ValidationError as exc:
        found += [f for f in _schema_findings(exc, source) if not _covered(f.where, flagged)]
        return config, found
    if chosen == "verify":
        config.verify = settings
        return config, found
    if verify_raw is not None and verify_model is not None:
        try:
            config.verify = verify_model.model_validate(verify_raw)
        except ValidationError as exc:
            found += [
                Finding(f.rule, f.message, f"verify.{f.where}", source)
                for f in _schema_findings(exc, source)
            ]
    if isinstance(settings, NodeSettings):
        config.node = settings
    elif isinstance(settings, HubSettings):
        config.hub = settings
        try:
            config.compliance = (
                _compliance_of(settings)
                if "compliance" in HubSettings.model_fields
                else ComplianceSettings.model_validate(compliance_raw or {})
            )
        except ValidationError as exc:
            found += [
                Finding(f.rule, f.message, f"compliance.{f.where}", source)
                for f in _schema_findings(exc, source)
            ]
    return config, found


def _covered(where: str, flagged: set[str]) -> bool:
    return any(where == f or where.startswith(f + ".") for f in flagged)


def check_config(config: CheckedConfig, prior: list[Finding]) -> list[Finding]:
    source = str(config.path)
    found = list(prior)
    if config.node is not None:
        found += check_node_settings(config.node, source)
    if config.hub is not None:
        found += findings_for_hub(
            config.hub,
            compliance=config.compliance or ComplianceSettings(),
            raw=config.raw,
            source=source,
        )
    if config.verify is not None:
        standalone = config.role == "verify"
        raw = config.raw if standalone else config.raw.get("verify")
        found += check_verify_settings(
            config.verify,
            raw if isinstance(raw, Mapping) else None,
            source,
            prefix="" if standalone else "verify.",
        )
    return _dedupe(found)


def cross_findings(configs: Sequence[CheckedConfig]) -> list[Finding]:
    """Across files: a node whose sensor is not in the hub's declared inventory."""
    hubs = [c for c in configs if c.compliance is not None and c.compliance.sensors]
    if not hubs:
        return []
    declared = {s.id for c in hubs for s in (c.compliance.sensors if c.compliance else [])}
    found = []
    for config in configs:
        if config.node is not None and config.node.sensor_id not in declared:
            found.append(
                Finding(
                    "sensor-undeclared",
                    f"sensor {config.node.sensor_id} is not declared in the hub's "
                    "compliance.sensors (position unknown to the DPIA and the public notice)",
                    "sensor_id",
                    str(config.path),
                )
            )
    return found


def check_files(paths: Sequence[Path], role: Role | None = None) -> list[Finding]:
    """All findings for the given config files, cross-file rules included."""
    configs = []
    found: list[Finding] = []
    for path in paths:
        config, prior = load_for_check(path, role)
        configs.append(config)
        found += check_config(config, prior)
    return found + cross_findings(configs)
