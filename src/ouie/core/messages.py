"""Versioned wire messages between nodes, the hub and integrators.

Metadata only, by construction: every field is a scalar, a short string, a timestamp or a
small mapping of label → number. No field can hold a sequence of numbers, so no message can
carry audio samples, spectrogram frames or embeddings. ``ouie.privacy.message_guard``
checks this over every model in this module, and a test runs that check.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from ouie.core.labels import EventLabel
from ouie.core.model_base import StrictModel

SCHEMA_VERSION: Literal[1] = 1
#: The longest window a node answers an onset request for, and the most onsets it returns.
MAX_ONSET_WINDOW_S = 4.0
MAX_ONSETS_PER_ANSWER = 8

SensorId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
SiteId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
ModelId = Annotated[str, StringConstraints(max_length=128)]
#: An Ed25519 signature, unpadded base64url (``ouie.transport.signing``).
Signature = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")]


def new_message_id() -> str:
    return uuid.uuid4().hex


class EventMessage(StrictModel):
    """One detected sound event at one sensor (``ouie/v1/<site>/<sensor>/events``)."""

    kind: Literal["event"] = "event"
    schema_version: Literal[1] = SCHEMA_VERSION
    message_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] = Field(
        default_factory=new_message_id
    )
    site: SiteId
    sensor_id: SensorId
    label: EventLabel
    onset: AwareDatetime = Field(description="UTC time of the onset, from the sample clock")
    offset: AwareDatetime = Field(description="UTC time of the offset, from the sample clock")
    peak_score: float = Field(ge=0.0, le=1.0)
    level_dbfs: float = Field(le=0.0, ge=-200.0, description="peak RMS level over the event")
    level_db_spl: float | None = Field(
        default=None, description="level_dbfs plus the calibration offset, when configured"
    )
    model_id: ModelId
    speech_present: bool = Field(
        default=False,
        description="speech was heard in the window; only impulsive classes pass then",
    )
    sequence: int = Field(ge=0, description="per-sensor counter, to detect gaps and replays")
    signature: Signature | None = Field(
        default=None, description="Ed25519 signature of the sensor over the rest of the message"
    )


class LevelStats(StrictModel):
    mean_dbfs: float
    max_dbfs: float
    clipped_fraction: float = Field(ge=0.0, le=1.0)


class StatusMessage(StrictModel):
    """Heartbeat of a node (``ouie/v1/<site>/<sensor>/status``)."""

    kind: Literal["status"] = "status"
    schema_version: Literal[1] = SCHEMA_VERSION
    message_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] = Field(
        default_factory=new_message_id
    )
    site: SiteId
    sensor_id: SensorId
    sent_at: AwareDatetime
    uptime_s: float = Field(ge=0.0)
    cpu_percent: float = Field(ge=0.0)
    rss_mb: float = Field(ge=0.0)
    level: LevelStats
    clock_source: Literal["system", "ntp", "gps", "ptp", "simulated"]
    clock_offset_ms: float
    model_id: ModelId
    events_emitted: int = Field(ge=0)
    speech_suppressions: int = Field(ge=0)
    dropped_chunks: int = Field(ge=0)
    invalid_samples: int = Field(ge=0, description="NaN/inf samples replaced by zeros")
    spooled_events: int = Field(ge=0, description="events waiting in the local spool")
    rejected_configs: int = Field(
        default=0,
        ge=0,
        description="threshold configs refused: unsigned, wrongly signed or older than the last",
    )
    onset_requests_answered: int = Field(
        default=0, ge=0, description="onset requests of the hub answered since the start"
    )
    onset_requests_refused: int = Field(
        default=0,
        ge=0,
        description="onset requests refused: unsigned, too long a window, or over the rate",
    )
    signature: Signature | None = Field(
        default=None, description="Ed25519 signature of the sensor over the rest of the message"
    )


class ThresholdConfigMessage(StrictModel):
    """Retained per-sensor detection settings pushed by the hub (``.../config``)."""

    kind: Literal["config"] = "config"
    schema_version: Literal[1] = SCHEMA_VERSION
    site: SiteId
    sensor_id: SensorId
    issued_at: AwareDatetime
    thresholds: dict[EventLabel, Annotated[float, Field(gt=0.0, lt=1.0)]]
    signature: Signature | None = Field(
        default=None, description="Ed25519 signature of the hub over the rest of the message"
    )


class AckMessage(StrictModel):
    """The hub's receipt for one node message (``ouie/v1/<site>/<sensor>/ack``, hub → node).

    Sent once the message is committed: ``stored``, a ``duplicate`` of one stored before, or
    ``rejected`` and kept in the hub's dead letters (``reason``). A node keeps each message
    in its spool until this receipt arrives, not merely until the broker's PUBACK: a broker
    that acknowledged a message can still lose it in a crash (docs/security.md).
    """

    kind: Literal["ack"] = "ack"
    schema_version: Literal[1] = SCHEMA_VERSION
    site: SiteId
    sensor_id: SensorId
    message_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    outcome: Literal["stored", "duplicate", "rejected"]
    reason: Annotated[str, StringConstraints(pattern=r"^[a-z_]{0,40}$")] = Field(
        default="", description="why a rejected message was refused (dead-letter reason)"
    )


class OnsetRequestMessage(StrictModel):
    """The hub asks one sensor for the impulse onsets it heard in a short window
    (``ouie/v1/<site>/<sensor>/onset-request``, hub → node).

    Sent only around an impulsive incident that too few sensors classified to be located
    (docs/hub.md, "Onsets on request"): the far sensors of a shot heard its bang but did not
    call it a gunshot. The node answers with ``ImpulseOnsetMessage``s: times and levels,
    no audio and no label. The window is bounded (``MAX_ONSET_WINDOW_S``) and a node refuses
    a longer one, so onsets cannot be collected as a continuous record of street activity.
    """

    kind: Literal["onset_request"] = "onset_request"
    schema_version: Literal[1] = SCHEMA_VERSION
    request_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] = Field(
        default_factory=new_message_id
    )
    site: SiteId
    sensor_id: SensorId
    issued_at: AwareDatetime
    start: AwareDatetime = Field(description="UTC start of the window asked about")
    end: AwareDatetime = Field(description="UTC end of the window asked about")
    incident_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = Field(
        default=None, description="the incident the hub asks for (audit, not used)"
    )
    signature: Signature | None = Field(
        default=None, description="Ed25519 signature of the hub over the rest of the message"
    )


class ImpulseOnsetMessage(StrictModel):
    """One impulse onset a sensor heard, in answer to an ``OnsetRequestMessage``
    (``ouie/v1/<site>/<sensor>/onsets``, node → hub).

    A time and a level, nothing else: no label, no score, no audio. ``count`` is how many
    onsets the answer holds (``index`` 0 … count − 1); an answer with none is one message
    with ``count`` 0 and no ``onset``, so the hub knows the sensor heard nothing loud.
    """

    kind: Literal["impulse_onset"] = "impulse_onset"
    schema_version: Literal[1] = SCHEMA_VERSION
    message_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] = Field(
        default_factory=new_message_id
    )
    request_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    site: SiteId
    sensor_id: SensorId
    sent_at: AwareDatetime
    index: int = Field(ge=0, le=MAX_ONSETS_PER_ANSWER)
    count: int = Field(ge=0, le=MAX_ONSETS_PER_ANSWER)
    onset: AwareDatetime | None = Field(
        default=None, description="UTC time of the onset, from the sample clock"
    )
    level_dbfs: float | None = Field(
        default=None, le=0.0, ge=-200.0, description="loudest 50 ms RMS after the onset"
    )
    prominence_db: float | None = Field(
        default=None, ge=0.0, le=200.0, description="how far the rise stands above the background"
    )
    signature: Signature | None = Field(
        default=None, description="Ed25519 signature of the sensor over the rest of the message"
    )


NodeMessage = EventMessage | StatusMessage

TopicKind = Literal["events", "status", "config", "ack", "onset-request", "onsets"]


def topic_for(site: str, sensor_id: str, kind: TopicKind) -> str:
    return f"ouie/v1/{site}/{sensor_id}/{kind}"


ALL_MESSAGE_MODELS: tuple[type[StrictModel], ...] = (
    EventMessage,
    StatusMessage,
    LevelStats,
    ThresholdConfigMessage,
    AckMessage,
    OnsetRequestMessage,
    ImpulseOnsetMessage,
)

__all__ = [
    "ALL_MESSAGE_MODELS",
    "MAX_ONSETS_PER_ANSWER",
    "MAX_ONSET_WINDOW_S",
    "SCHEMA_VERSION",
    "AckMessage",
    "EventMessage",
    "ImpulseOnsetMessage",
    "LevelStats",
    "NodeMessage",
    "OnsetRequestMessage",
    "StatusMessage",
    "ThresholdConfigMessage",
    "TopicKind",
    "topic_for",
]
