"""The ``web:`` section of the hub's settings: the console's map and language (a settings type,
so it lives in config; the web package reads it).

The hub reads it as ``HubSettings.web`` when that field exists; until then (or in a hub
built without it) ``web_settings(settings)`` returns the defaults.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ouie.core.labels import EventLabel

#: Classes whose new incidents sound the console's alert tone by default.
HIGH_PRIORITY: tuple[EventLabel, ...] = (
    EventLabel.GUNSHOT,
    EventLabel.EXPLOSION,
    EventLabel.SCREAM,
    EventLabel.VEHICLE_CRASH,
)


class PublicCountsSettings(BaseModel):
    """How the public page and ``/api/v1/public/summary`` publish incident counts.

    Live per-class counts let anyone test whether a sound they made was detected; counts
    are therefore published for whole UTC days that ended at least ``delay_h`` ago, and a
    class with fewer than ``min_count`` incidents in a period is shown as "fewer than N"
    (zero included, so a small count cannot be told from none). ``ouie check`` refuses a
    shorter delay or a smaller minimum (rule ``public-counts-live``).
    """

    model_config = ConfigDict(extra="forbid")

    delay_h: float = Field(
        default=24.0, ge=0.0, le=24.0 * 90, description="publish counts this long after"
    )
    min_count: int = Field(
        default=5, ge=0, le=1000, description="counts below this are published as '< N'"
    )


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="serve the console and the public page")
    site: str | None = Field(
        default=None,
        description="site plan drawn on the map: a bundled site name (saint-etienne) or the "
        "path of a site directory / site.yaml; none: sensors only",
    )
    tile_url: str | None = Field(
        default=None,
        description="optional raster tile URL template ({z}/{x}/{y}); the map is offline "
        "(site plan only) without it",
        max_length=500,
    )
    tile_attribution: str = Field(default="", max_length=300)
    default_lang: Literal["fr", "en"] = "fr"
    high_priority: list[EventLabel] = Field(
        default_factory=lambda: list(HIGH_PRIORITY),
        description="classes whose new incidents play the alert tone",
    )
    public_page: bool = Field(default=True, description="serve /public without login")
    public_counts: PublicCountsSettings = Field(default_factory=PublicCountsSettings)
    session_warning_s: int = Field(
        default=60, ge=10, description="warn this long before the session expires"
    )


def web_settings(settings: Any) -> WebSettings:
    value = getattr(settings, "web", None)
    return value if isinstance(value, WebSettings) else WebSettings()
