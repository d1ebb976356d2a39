"""Rule ``speech-guard-weakened``: the node's speech guard may not be loosened beyond what
the DPIA's measured figures cover."""

from __future__ import annotations

from ouie.compliance.findings import Finding
from ouie.config.node import PrivacySettings

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
