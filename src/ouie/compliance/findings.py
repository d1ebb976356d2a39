"""What ``ouie check`` reports: the rule ids and one ``Finding`` per problem.

Every rule module (``ouie.compliance.rules``) returns ``Finding``s; the runner
(``ouie.compliance.check``) and the DPIA generator only read them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

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
    "mqtt-trust-missing": "production MQTT needs TLS, client certificates, the broker ACL and "
    "signed messages, on loopback too",
    "http-insecure": "the console beyond loopback needs TLS (secure session cookies)",
    "zone-missing": "the listening zone must be declared as a polygon",
    "sensor-outside-zone": "every sensor must stand inside the declared zone",
    "sensor-undeclared": "every node must be a sensor declared in the hub's inventory",
    "camera-auto-cue": "cameras turn on a sound without an operator only where the law says so",
    "experiment-missing": "production needs a bounded experiment or a permanent instrument",
    "experiment-ended": "no processing after the experiment's end",
    "public-counts-live": "public counts are delayed and small counts suppressed",
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


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.rule, finding.where, finding.message)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique
