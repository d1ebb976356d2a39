"""Reading a config file for ``ouie check``: tell its role, merge the role's environment
variables, validate it; schema problems become findings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ouie.compliance.findings import Finding, Role
from ouie.compliance.roles import compliance_of
from ouie.compliance.rules.audio import audio_export_findings
from ouie.compliance.rules.walk import truthy
from ouie.config.compliance import ComplianceSettings
from ouie.config.hub import HubSettings
from ouie.config.loader import ConfigError, deep_merge, read_yaml
from ouie.config.node import NodeSettings


def _verify_model() -> type[BaseModel] | None:
    try:
        from ouie.config.verify import VerifySettings
    except ImportError:  # the verify extra is not installed
        return None
    return VerifySettings


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
    if chosen == "node" and not truthy(guard):
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
                compliance_of(settings)
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
