"""What the public may see of incident counts (``web.public_counts``): whole UTC days that
ended at least ``delay_h`` ago, and no count below ``min_count``.

Counts that updated within a second let anyone check whether the sound they just made was
detected; a count of 1 or 2 for a class and a week can single out one incident. So the
public summary (``/api/v1/public/summary``) and the public page publish days that are over
and old enough, and a count below the minimum, zero included, is published as "fewer than
N" so that a small count cannot be told from none. ``ouie check`` refuses settings below
the floors (rule ``public-counts-live``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta

from ouie.config.web import PublicCountsSettings


def published_until(now: datetime, settings: PublicCountsSettings) -> datetime:
    """End (exclusive) of what may be published: midnight UTC starting the day that holds
    ``now - delay_h``, so that only whole days at least ``delay_h`` old are counted."""
    moment = (now - timedelta(hours=settings.delay_h)).astimezone(UTC)
    return datetime.combine(moment.date(), time(0), UTC)


def suppressed(count: int, settings: PublicCountsSettings) -> int | None:
    """``count`` if it may be published, else None ("fewer than ``min_count``")."""
    return count if count >= settings.min_count else None


def publishable(counts: Mapping[str, int], settings: PublicCountsSettings) -> dict[str, int]:
    """The counts at or above the minimum; the others are left out."""
    return {label: n for label, n in counts.items() if suppressed(n, settings) is not None}
