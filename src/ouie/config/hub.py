"""Settings tree of the ``hub`` role (``ouie hub --config hub.yaml``; env ``OUIE_HUB__*``).

``OUIE_DATABASE_URL`` overrides ``database.url`` (the usual way to point a hub at
PostgreSQL: ``postgresql+psycopg://user@host:5432/db``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ouie.config.base import Section
from ouie.config.compliance import ComplianceSettings
from ouie.config.web import WebSettings

SiteName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class DatabaseSettings(Section):
    url: str = Field(default="sqlite:///ouie-hub.sqlite3", description="SQLAlchemy URL")
    batch_size: int = Field(default=500, ge=1, le=20_000, description="messages per commit")
    batch_wait_ms: float = Field(
        default=20.0, ge=0.0, le=5000.0, description="how long a batch waits to fill"
    )
    migrate: bool = Field(default=True, description="run Alembic migrations at start")


class MqttIngestSettings(Section):
    enabled: bool = False
    url: str = Field(default="mqtt://127.0.0.1:1883")
    username: str | None = None
    password: str | None = None
    client_id: str = Field(default="ouie-hub-1", description="persistent session id, per worker")
    share_group: str | None = Field(
        default="ouie-hub", description="MQTT 5 shared subscription group; None: plain"
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)


class IngestSettings(Section):
    max_future_s: float = Field(
        default=5.0, ge=0.0, description="reject onsets this far ahead of the hub clock"
    )
    max_age_s: float = Field(
        default=7 * 24 * 3600.0, gt=0.0, description="reject onsets older than this"
    )
    max_event_duration_s: float = Field(default=600.0, gt=0.0)
    max_payload_bytes: int = Field(default=16_384, ge=256)
    clock_warn_ms: float = Field(
        default=50.0, gt=0.0, description="a node reporting a larger clock offset is 'clock'"
    )
    stale_after_s: float = Field(
        default=120.0, gt=0.0, description="a node silent this long is 'offline'"
    )


class FusionSettings(Section):
    temperature_c: float = Field(default=15.0, ge=-40.0, le=60.0)
    timing_tolerance_s: float = Field(
        default=0.05, ge=0.0, description="slack on travel-time consistency (clocks, onsets)"
    )
    onset_sigma_s: float = Field(
        default=0.002, gt=0.0, description="prior onset timing error (1 σ) for the ellipse"
    )
    max_sensor_separation_m: float = Field(
        default=600.0, gt=0.0, description="sensors farther apart never hear the same sound"
    )
    update_window_s: float = Field(
        default=10.0, ge=0.0, description="repeats from a sensor this soon update the incident"
    )
    fallback_radius_m: float = Field(
        default=150.0, gt=0.0, description="radius when fewer than 3 sensors heard it"
    )
    max_solution_distance_m: float = Field(
        default=2000.0, gt=0.0, description="TDOA fixes farther than this from the sensors fail"
    )
    source_height_m: float = Field(default=1.0, description="assumed source height above ground")


class RetentionSettings(Section):
    days: int = Field(default=30, ge=1, le=3650)
    per_site: dict[str, int] = Field(default_factory=dict, description="site → days")
    interval_s: float = Field(default=3600.0, gt=0.0)

    def days_for(self, site: str) -> int:
        return self.per_site.get(site, self.days)


class AuthSettings(Section):
    session_ttl_s: int = Field(default=12 * 3600, ge=60)
    cookie_secure: bool = Field(default=False, description="set for HTTPS deployments")
    login_attempts: int = Field(default=5, ge=1, description="failed logins per window")
    login_window_s: float = Field(default=60.0, gt=0.0)


class HttpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="forbid", env_prefix="OUIE_HUB__", env_nested_delimiter="__"
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    mqtt: MqttIngestSettings = Field(default_factory=MqttIngestSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    fusion: FusionSettings = Field(default_factory=FusionSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    compliance: ComplianceSettings = Field(
        default_factory=ComplianceSettings,
        description="controller, legal basis, zone: checked by `ouie check` and at start-up",
    )
    verify: Path | dict[str, Any] | None = Field(
        default=None,
        description="alarm verification (cameras, drone docks, outputs): a verify.yaml path or "
        "the `ouie.config.verify.VerifySettings` fields inline; validated when the hub "
        "builds the service (the `verify` extra is only needed when it is set)",
    )


def load_hub_settings(path: Path | None) -> HubSettings:
    """The hub's settings from ``path`` and the environment (``OUIE_DATABASE_URL`` wins)."""
    from ouie.config.loader import load_settings

    settings = load_settings(HubSettings, path)
    url = os.environ.get("OUIE_DATABASE_URL")
    if url:
        settings = settings.model_copy(
            update={"database": settings.database.model_copy(update={"url": url})}
        )
    return settings
