"""Rules ``experiment-missing`` and ``experiment-ended``: production is a bounded experiment
(or rests on an instrument that authorises it permanently), and nothing runs past its end.

The CNIL stopped the earlier demonstrator; what a prefect can accept is an experiment with
dates, success and stop criteria, decided again at its end. The hub enforces the same end at
run time (``ouie.hub.experiment``); these rules make ``ouie check`` and the start-up check say
it before anything runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ouie.compliance.findings import Finding
from ouie.config.compliance import ComplianceSettings


def experiment_findings(
    compliance: ComplianceSettings, now: datetime | None = None, source: str = ""
) -> list[Finding]:
    experiment = compliance.experiment
    permanent = compliance.legal_basis is not None and compliance.legal_basis.permanent
    if experiment is None:
        if compliance.production and not permanent:
            return [
                Finding(
                    "experiment-missing",
                    "production needs a bounded experiment (compliance.experiment: start, end, "
                    "success and stop criteria) unless compliance.legal_basis.permanent says "
                    "the instrument authorises the processing without a time limit",
                    "compliance.experiment",
                    source,
                )
            ]
        return []
    moment = now if now is not None else datetime.now(UTC)
    if moment >= experiment.ends_at():
        return [
            Finding(
                "experiment-ended",
                f"the experiment ended on {experiment.end.isoformat()}; the hub purges its "
                "data and refuses to run. An extension needs a regenerated DPIA and "
                "`ouie experiment extend` (an audited admin action)",
                "compliance.experiment.end",
                source,
            )
        ]
    return []
