"""Settings tree of the ``hub`` role (``ouie hub --config hub.yaml``; env ``OUIE_HUB__*``).

``OUIE_DATABASE_URL`` overrides ``database.url`` (the usual way to point a hub at
PostgreSQL: ``postgresql+psycopg://user@host:5432/db``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, IPvAnyNetwork
from pydantic_settings import BaseSettings, SettingsConfigDict

from ouie.config.base import Section
from ouie.config.compliance import ComplianceSettings
from ouie.config.security import HubIdentitySettings, TlsSettings
from ouie.config.web import WebSettings
from ouie.core.labels import EventLabel

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
        default=None,
        description="MQTT 5 shared subscription group, to spread ingest over several hub "
        "workers; None (default): a plain persistent subscription, the one Mosquitto 2.0 "
        "keeps across its own restart (docs/hub.md, delivery guarantees)",
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    confirm: bool = Field(
        default=True,
        description="publish a receipt (AckMessage on .../ack) for each message stored, so "
        "nodes keep a message in their spool until the hub has it",
    )
    tls: TlsSettings | None = Field(
        default=None,
        description="the hub's client certificate for an mqtts:// broker (`ouie pki init`)",
    )
    broker_config: Path | None = Field(
        default=None,
        description="the Mosquitto config `ouie broker config` wrote for this hub; `ouie check` "
        "reads it for TLS, client certificates and the ACL",
    )


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
    require_signatures: bool = Field(
        default=False,
        description="refuse unsigned messages from every sensor; a sensor with a signing key "
        "(`ouie sensor add`) is always verified. Production needs true",
    )
    replay_window_s: float = Field(
        default=300.0,
        gt=0.0,
        description="a signed event or status older than this is refused as a possible replay",
    )
    rejection_audit_interval_s: float = Field(
        default=3600.0,
        ge=0.0,
        description="refused messages are audited once per sensor and reason per interval",
    )


#: How far a lamp-post sensor may detect each label, for the approximate area only: an upper
#: bound, since an area that misses its source is worse than a wide one. Source levels at 1 m
#: (the twin's defaults, and the literature: a handgun 130-160 dB peak, fireworks louder, a
#: siren or car alarm 115-120 dB, a scream or breaking glass about 105 dB, a spray can 80 dB)
#: against a quiet night street (45 dB) with 10 dB to spare, spherical spreading, capped at
#: 600 m, the sensor spacing beyond which two sensors are taken never to hear one sound
#: (``max_sensor_separation_m``): buildings, not air, end a gunshot's reach in a city. The
#: spray can's 18 m is widened to 50 m for louder cans and calmer nights.
DEFAULT_HEARING_RANGE_M: dict[EventLabel, float] = {
    EventLabel.GUNSHOT: 600.0,
    EventLabel.EXPLOSION: 600.0,
    EventLabel.VEHICLE_CRASH: 600.0,
    EventLabel.SIREN: 600.0,
    EventLabel.CAR_ALARM: 600.0,
    EventLabel.GLASS_BREAKING: 300.0,
    EventLabel.SCREAM: 300.0,
    EventLabel.SPRAY_CAN: 50.0,
}


def farthest_reach(ranges: Mapping[str, float], default: float, labels: Iterable[str]) -> float:
    """The hearing range of the farthest-carrying of ``labels`` (``default`` for a label
    ``ranges`` does not list, and for no label at all)."""
    return max((ranges.get(label, default) for label in labels), default=default)


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
    sustained_onset_tolerance_s: float = Field(
        default=1.0,
        ge=0.0,
        description="sustained classes: how far an onset may be from the sound's arrival (the "
        "start of its first window over the threshold), added to timing_tolerance_s when "
        "sensors' detections are matched as one sound",
    )
    update_window_s: float = Field(
        default=10.0,
        ge=0.0,
        description="sustained classes: repeats from a sensor this soon update the incident",
    )
    burst_window_s: float = Field(
        default=10.0,
        ge=0.0,
        description="impulsive classes: a shot this soon after another, and near it, is a "
        "further round of the same incident",
    )
    burst_radius_m: float = Field(
        default=100.0,
        ge=0.0,
        description="how far apart two rounds of one incident may be (plus their uncertainty)",
    )
    fallback_radius_m: float = Field(
        default=150.0,
        gt=0.0,
        description="how far a sensor is taken to hear: bounds the approximate area given "
        "when fewer than 3 sensors locate a sound",
    )
    hearing_range_m: dict[EventLabel, Annotated[float, Field(gt=0.0)]] = Field(
        default_factory=lambda: dict(DEFAULT_HEARING_RANGE_M),
        description="how far a sensor may detect each label: bounds the approximate area of "
        "a sound no point could be fixed for (labels not listed: fallback_radius_m)",
    )
    max_solution_distance_m: float = Field(
        default=2000.0, gt=0.0, description="TDOA fixes farther than this from the sensors fail"
    )
    source_height_m: float = Field(default=1.0, description="assumed source height above ground")

    def hearing_for(self, labels: Iterable[str]) -> float:
        """The area's hearing range for a sound given these labels: the farthest-carrying
        one's (sensors may disagree on what an impulsive sound was)."""
        ranges = {str(label): metres for label, metres in self.hearing_range_m.items()}
        return farthest_reach(ranges, self.fallback_radius_m, labels)


class RetentionSettings(Section):
    days: int = Field(default=30, ge=1, le=3650)
    per_site: dict[str, int] = Field(default_factory=dict, description="site → days")
    interval_s: float = Field(default=3600.0, gt=0.0)

    def days_for(self, site: str) -> int:
        return self.per_site.get(site, self.days)


class AuthSettings(Section):
    session_ttl_s: int = Field(default=12 * 3600, ge=60)
    cookie_secure: bool | None = Field(
        default=None,
        description="true: session cookies only over HTTPS; null (default): secure whenever "
        "the request came over HTTPS (directly or from a trusted proxy); production needs true",
    )
    login_attempts: int = Field(default=5, ge=1, description="failed logins per account per window")
    login_attempts_per_ip: int = Field(
        default=20,
        ge=1,
        description="failed logins per client address per window (higher: a control room's "
        "operators may share one address)",
    )
    login_window_s: float = Field(default=60.0, gt=0.0)
    token_ttl_days: int = Field(
        default=90, ge=1, le=3650, description="API tokens expire this long after creation"
    )
    confirmation_ttl_s: int = Field(
        default=24 * 3600,
        ge=60,
        description="how long a change awaiting a second admin's confirmation stays open",
    )


class HttpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(
        default=65_536,
        ge=1024,
        le=64 * 1024 * 1024,
        description="larger request bodies are refused with 413 before they are parsed",
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed "
        "(addresses or networks); none by default, loopback included",
    )
    hsts_max_age_s: int = Field(
        default=365 * 24 * 3600,
        ge=0,
        description="Strict-Transport-Security max-age sent on HTTPS responses (0: none)",
    )


class AuditSettings(Section):
    anchor_key: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM, `ouie audit keygen`) the hub signs the audit "
        "head with; kept outside the database. None: no anchors",
    )
    anchor_interval_s: float = Field(
        default=3600.0, ge=1.0, description="how often a changed audit head is signed"
    )
    anchor_log: Path | None = Field(
        default=None,
        description="JSON-lines file outside the database the hub appends each signed head to "
        "(`ouie audit verify --anchors`)",
    )


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
    audit: AuditSettings = Field(default_factory=AuditSettings)
    identity: HubIdentitySettings = Field(
        default_factory=HubIdentitySettings,
        description="the site CA and the hub's config-signing key (docs/security.md)",
    )
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
