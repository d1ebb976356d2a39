"""Settings tree of the ``node`` role (``ouie node --config node.yaml``; env ``OUIE_NODE__*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ouie.config.base import Section
from ouie.config.classifiers import AutoSettings, BackendSettings
from ouie.config.security import NodeIdentitySettings, TlsSettings
from ouie.core.labels import EventLabel

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


#: Starting thresholds per label; tuned on dev folds by ``ouie eval`` (docs/benchmarks.md).
DEFAULT_THRESHOLDS: dict[EventLabel, float] = {label: 0.5 for label in EventLabel}


class EventSettings(Section):
    thresholds: dict[EventLabel, Probability] = Field(default_factory=dict)
    hysteresis: float = Field(
        default=0.7, gt=0.0, le=1.0, description="an event ends below threshold × hysteresis"
    )
    median_frames: int = Field(default=1, ge=1, le=15, description="median smoothing, odd")
    min_duration_s: float = Field(default=0.0, ge=0.0)
    merge_gap_s: float = Field(default=1.0, ge=0.0, description="join events this close")
    one_label_per_window: bool = Field(
        default=True,
        description="when several labels confirm on one window (a shot scores gunshot and "
        "explosion), report only the highest-scoring one",
    )

    @model_validator(mode="after")
    def _odd_median(self) -> EventSettings:
        if self.median_frames % 2 == 0:
            raise ValueError("median_frames must be odd")
        return self

    def threshold(self, label: EventLabel) -> float:
        return self.thresholds.get(label, DEFAULT_THRESHOLDS[label])


class PrivacySettings(Section):
    speech_guard: Literal[True] = Field(
        default=True, description="cannot be turned off: speech is never reported"
    )
    speech_probability: Probability = Field(
        default=0.5, description="silero-vad frame probability counted as speech"
    )
    speech_fraction: Probability = Field(
        default=0.3, description="fraction of speech frames that makes a window speech-dominated"
    )
    impulsive_threshold: Probability = Field(
        default=0.9, description="impulsive classes pass over speech only above this score"
    )


class OnsetSettings(Section):
    """Impulse onsets the node notes and gives the hub on request (``ouie.node.impulses``,
    docs/privacy.md "Impulse onsets"): times and levels only, never audio or a label."""

    answer_requests: bool = Field(
        default=True,
        description="answer the hub's onset requests (false: onsets are neither kept nor sent)",
    )
    min_prominence_db: float = Field(
        default=15.0, ge=6.0, le=60.0, description="how far above the background an impulse is"
    )
    keep_s: float = Field(
        default=30.0, ge=5.0, le=120.0, description="how long onsets are kept, in RAM only"
    )
    max_requests_per_minute: int = Field(
        default=30, ge=1, le=600, description="requests answered per minute; more are refused"
    )
    wait_s: float = Field(
        default=5.0,
        ge=0.0,
        le=30.0,
        description="how long a request for a window not yet processed waits for it",
    )


class SourceSettings(Section):
    kind: Literal["file", "stdin", "device"] = "device"
    path: Path | None = None
    sample_rate: int = Field(default=16000, ge=8000, le=192000, description="stdin/device rate")
    channels: int = Field(default=1, ge=1, le=32)
    sample_format: Literal["s16le", "f32le"] = "s16le"
    chunk_s: float = Field(default=0.1, gt=0.0, le=2.0)
    realtime: bool = Field(default=False, description="pace file input at real time")
    device: str | int | None = None


class MqttSettings(Section):
    url: str = Field(default="mqtt://127.0.0.1:1883")
    username: str | None = None
    password: str | None = None
    client_id: str | None = Field(
        default=None,
        description="persistent session id; a broker from `ouie broker config` replaces it "
        "with the certificate's name, so no client can take over another's session",
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    tls: TlsSettings | None = Field(
        default=None, description="client certificate for an mqtts:// broker (`ouie sensor add`)"
    )
    keep_until: Literal["stored", "puback"] = Field(
        default="stored",
        description="a message leaves the spool when the hub confirms it stored it "
        "(`stored`, its receipt on .../ack), or already on the broker's PUBACK (`puback`: "
        "only for a consumer other than an ouie hub; a broker crash can then lose messages)",
    )
    resend_after_s: float = Field(
        default=10.0,
        gt=0.0,
        le=3600.0,
        description="the hub confirmed a later message but not an earlier one for this long: "
        "resend from the oldest unconfirmed (the broker lost it)",
    )


class SpoolSettings(Section):
    path: Path = Path("ouie-spool.sqlite3")
    max_events: int = Field(default=100_000, ge=100)


class PublishSettings(Section):
    kind: Literal["mqtt", "jsonl", "inproc"] = "jsonl"
    jsonl_path: Path | None = Field(default=None, description="None: standard output")
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    spool: SpoolSettings = Field(default_factory=SpoolSettings)
    status_interval_s: float = Field(default=30.0, gt=0.0)


class NodeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="forbid", env_prefix="OUIE_NODE__", env_nested_delimiter="__"
    )

    site: str = Field(default="default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    sensor_id: str = Field(default="sensor-1", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    calibration_db_spl: float | None = Field(
        default=None, description="dB SPL of a 0 dBFS sine; enables level_db_spl"
    )
    ring_buffer_s: float = Field(default=4.0, ge=1.0, le=30.0)
    classifier: BackendSettings = Field(
        default_factory=AutoSettings, description="the backend, by ``backend``, and its settings"
    )
    events: EventSettings = Field(default_factory=EventSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    onsets: OnsetSettings = Field(default_factory=OnsetSettings)
    source: SourceSettings = Field(default_factory=SourceSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)
    identity: NodeIdentitySettings = Field(
        default_factory=NodeIdentitySettings,
        description="signing key of this sensor and the hub's public key (docs/security.md)",
    )
