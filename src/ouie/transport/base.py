"""What the node needs from a transport: publish events and status, receive thresholds.

Backends (one module each): ``jsonl`` (JSON lines to stdout or a file), ``inproc`` (an
asyncio bus inside one process, used by the hub and ``ouie demo``) and ``mqtt`` (aiomqtt,
QoS 1, with a SQLite store-and-forward spool). All of them carry the typed, metadata-only
messages of ``ouie.core.messages``; none has a way to carry audio.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

from pydantic import ValidationError

from ouie.core.messages import (
    AckMessage,
    EventMessage,
    ImpulseOnsetMessage,
    OnsetRequestMessage,
    StatusMessage,
    ThresholdConfigMessage,
)

log = logging.getLogger(__name__)

#: Called with each valid threshold config addressed to this sensor.
ConfigHandler = Callable[[ThresholdConfigMessage], None]
#: Called with each valid onset request addressed to this sensor (it must not block).
OnsetRequestHandler = Callable[[OnsetRequestMessage], None]


@runtime_checkable
class Publisher(Protocol):
    """Where a node's messages go."""

    async def publish_event(self, message: EventMessage) -> None:
        """Hand over one event. Never loses it silently: it is delivered, spooled, or the
        call raises."""
        ...

    async def publish_status(self, message: StatusMessage) -> None:
        """Hand over one heartbeat; may be dropped when the transport is offline."""
        ...

    async def close(self) -> None:
        """Deliver what can be delivered quickly, then release resources."""
        ...

    @property
    def spooled_events(self) -> int:
        """Events accepted but not yet acknowledged downstream (0 for unspooled backends)."""
        ...


@runtime_checkable
class ResumesSequence(Protocol):
    """A publisher with durable state that knows the last event sequence number it saw, so a
    restarted node continues the per-sensor counter instead of starting again at 0."""

    def next_sequence(self) -> int: ...


@runtime_checkable
class OnsetPublisher(Protocol):
    """A publisher that can answer the hub's onset requests (MQTT, in-process)."""

    async def publish_onset(self, message: ImpulseOnsetMessage) -> None:
        """Hand over one onset of an answer. Not spooled: an answer that cannot go out now
        is late for the shot it was asked for, and is dropped (logged)."""
        ...


def encode(
    message: EventMessage
    | StatusMessage
    | ThresholdConfigMessage
    | OnsetRequestMessage
    | ImpulseOnsetMessage,
) -> bytes:
    return message.model_dump_json().encode("utf-8")


HubMessage = TypeVar("HubMessage", ThresholdConfigMessage, AckMessage, OnsetRequestMessage)


def _addressed(
    model: type[HubMessage], payload: bytes, site: str, sensor_id: str, what: str
) -> HubMessage | None:
    """``payload`` as a ``model`` for this sensor, or ``None`` (logged as ``what``) when it
    is invalid or addressed to another sensor."""
    try:
        message = model.model_validate_json(payload)
    except ValidationError as exc:
        log.warning("ignoring invalid %s: %s", what, exc.errors()[0]["msg"])
        return None
    if (message.site, message.sensor_id) != (site, sensor_id):
        log.warning(
            "ignoring %s for %s/%s (this node is %s/%s)",
            what,
            message.site,
            message.sensor_id,
            site,
            sensor_id,
        )
        return None
    return message


def parse_config(payload: bytes, site: str, sensor_id: str) -> ThresholdConfigMessage | None:
    """A config payload for this sensor, or ``None`` (logged) when it is empty, invalid or
    addressed to another sensor. An empty payload clears a retained config; callers treat
    ``None`` as "nothing to apply"."""
    if not payload:
        return None
    return _addressed(ThresholdConfigMessage, payload, site, sensor_id, "threshold config")


def parse_receipt(payload: bytes, site: str, sensor_id: str) -> AckMessage | None:
    """The hub's receipt for one of this sensor's messages, or ``None`` (logged) when it is
    invalid or addressed to another sensor: such a receipt must not empty our spool."""
    return _addressed(AckMessage, payload, site, sensor_id, "hub receipt")


def parse_onset_request(payload: bytes, site: str, sensor_id: str) -> OnsetRequestMessage | None:
    """An onset request for this sensor, or ``None`` (logged) when it is invalid or addressed
    to another sensor."""
    return _addressed(OnsetRequestMessage, payload, site, sensor_id, "onset request")
