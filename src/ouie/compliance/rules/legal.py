"""The GDPR rules on the hub's ``compliance:`` section: controller, DPO, legal basis,
retention against the legal maximum, and the declared zone."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel

from ouie.compliance.findings import Finding
from ouie.compliance.rules.zone import zone_findings
from ouie.config.compliance import ComplianceSettings

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
