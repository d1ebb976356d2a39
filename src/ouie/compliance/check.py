"""``ouie check``: the privacy and safety rules every node and hub configuration must pass.

Each rule has a stable id (``RULES``) and produces one ``Finding`` per problem, with the
config key it is about and what to do. ``ouie check CONFIG...`` prints them and exits
non-zero on any error; the hub runs the same rules at start-up (``startup_check``) and
refuses to start in production mode when any error is found.

The rules read the configuration the role would actually run with: the YAML file merged
with ``OUIE_<ROLE>__*`` environment variables. Keys that no settings model knows (a
``save_audio: true`` someone added) are still examined before the schema rejects them,
so the message says why the option is unacceptable rather than only that it is unknown.

The rules live in ``ouie.compliance.rules``, one module per family; this module runs
them over files (``check_files``) and at the hub's start-up (``startup_check``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from ouie.compliance.findings import Finding, Role, dedupe, errors
from ouie.compliance.loading import CheckedConfig, load_for_check
from ouie.compliance.roles import (
    VerifyUnreadable,
    check_node_settings,
    check_verify_settings,
    compliance_of,
    findings_for_hub,
    resolve_verify,
)
from ouie.compliance.rules.network import node_trust_findings
from ouie.config.compliance import ComplianceSettings, DeclaredSensor
from ouie.config.hub import HubSettings

log = logging.getLogger(__name__)


class ComplianceError(RuntimeError):
    """Raised by ``startup_check`` when a production hub has findings."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        lines = "\n".join("  " + f.format() for f in self.findings)
        super().__init__(
            f"refusing to start in production mode: {len(self.findings)} compliance "
            f"finding(s) (run `ouie check` on this config):\n{lines}"
        )


def startup_check(
    settings: HubSettings,
    sensors: Iterable[DeclaredSensor] = (),
    *,
    compliance: ComplianceSettings | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    """For ``ouie hub`` at start-up: log every finding; in production mode raise
    ``ComplianceError`` if any is an error (the hub must then exit non-zero)."""
    comp = compliance if compliance is not None else compliance_of(settings)
    try:
        verify = resolve_verify(settings)
    except VerifyUnreadable:
        verify = None  # building the verification service reports it and stops the hub
    found = findings_for_hub(settings, sensors, compliance=comp, verify=verify, now=now)
    for finding in found:
        log.warning("compliance: %s", finding.format())
    if comp.production and errors(found):
        raise ComplianceError(errors(found))
    return found


def check_config(
    config: CheckedConfig, prior: list[Finding], now: datetime | None = None
) -> list[Finding]:
    source = str(config.path)
    found = list(prior)
    if config.node is not None:
        found += check_node_settings(config.node, source)
    if config.hub is not None:
        verify = config.verify
        if verify is None and isinstance(config.hub.verify, Path):
            try:
                verify = resolve_verify(config.hub, config.path.parent)
            except VerifyUnreadable as exc:
                found.append(
                    Finding(
                        "camera-auto-cue",
                        f"cannot read the verification settings to check automatic camera "
                        f"cueing ({exc})",
                        "verify",
                        source,
                        "warning",
                    )
                )
        found += findings_for_hub(
            config.hub,
            compliance=config.compliance or ComplianceSettings(),
            raw=config.raw,
            source=source,
            verify=verify,
            now=now,
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
    return dedupe(found)


def cross_findings(configs: Sequence[CheckedConfig]) -> list[Finding]:
    """Across files: a node whose sensor is not in the hub's declared inventory; a node of
    a production hub without its certificate and keys (``mqtt-trust-missing``)."""
    found: list[Finding] = []
    if any(c.compliance is not None and c.compliance.production for c in configs):
        for config in configs:
            if config.node is not None:
                found += node_trust_findings(config.node, str(config.path))
    hubs = [c for c in configs if c.compliance is not None and c.compliance.sensors]
    if not hubs:
        return found
    declared = {s.id for c in hubs for s in (c.compliance.sensors if c.compliance else [])}
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


def check_files(
    paths: Sequence[Path], role: Role | None = None, now: datetime | None = None
) -> list[Finding]:
    """All findings for the given config files, cross-file rules included; ``now`` is the
    time an experiment's end is checked against (default: the clock)."""
    configs = []
    found: list[Finding] = []
    for path in paths:
        config, prior = load_for_check(path, role)
        configs.append(config)
        found += check_config(config, prior, now)
    return found + cross_findings(configs)
