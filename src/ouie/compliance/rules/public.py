"""Rule ``public-counts-live``: the public page's incident counts are not a live oracle.

Counts that update within a second let anyone test whether a sound they made was detected
(and, near a sensor, whether an incident happened at a given place and time). The public
summary therefore publishes whole days that ended at least a day ago and suppresses small
counts (``web.public_counts``, enforced in ``ouie.hub.public_counts``); this rule refuses a
configuration that shortens the delay or lowers the minimum below these floors.
"""

from __future__ import annotations

from ouie.compliance.findings import Finding
from ouie.config.web import PublicCountsSettings

#: the shortest publication delay the rule accepts (hours); the setting's default
MIN_DELAY_H = 24.0
#: the smallest suppression threshold the rule accepts: 1 and 2 would single out an event
MIN_COUNT = 3


def public_counts_findings(
    counts: PublicCountsSettings, public_page: bool = True, source: str = ""
) -> list[Finding]:
    if not public_page:
        return []
    found = []
    if counts.delay_h < MIN_DELAY_H:
        found.append(
            Finding(
                "public-counts-live",
                f"public counts would be published {counts.delay_h:g} h after the fact; "
                f"anyone could test whether a sound was detected. Use at least "
                f"{MIN_DELAY_H:g} h",
                "web.public_counts.delay_h",
                source,
            )
        )
    if counts.min_count < MIN_COUNT:
        found.append(
            Finding(
                "public-counts-live",
                f"suppressing only counts below {counts.min_count} lets a single incident "
                f"show; suppress counts below at least {MIN_COUNT}",
                "web.public_counts.min_count",
                source,
            )
        )
    return found
