"""Domain events of the verification actions, for the hub's audit log and live updates.

Every action reports what it did as one of these immutable events through an ``AuditSink``
(any callable taking the event). The hub injects a sink that turns each into an audit record
(``ouie.core.audit.AuditEvent``, with ``to_audit_event``) and appends it to its
hash-chained log; the console can show the same events live. This package never imports
the hub. Events carry identifiers, positions and protocol results only: never
credentials, never audio.

Ordering guarantees the dispatcher keeps: ``DroneMissionApproved`` is recorded before any
byte goes to a vehicle (a failing sink stops the launch); every vehicle command is
recorded as ``DroneCommandSent`` with its acknowledgement (or timeout) once it completes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

from pydantic import AwareDatetime, Field

from ouie.core.audit import AuditEvent
from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now

SYSTEM_ACTOR = "system"


class VerifyEvent(StrictModel):
    """Base: who did it, when, to which object. ``action`` names the audit action."""

    action: ClassVar[str] = "verify.event"
    object_type: ClassVar[str] = "incident"

    actor: str = SYSTEM_ACTOR
    at: AwareDatetime = Field(default_factory=utc_now)

    @property
    def object_id(self) -> str:
        return str(getattr(self, "incident_id", ""))

    def detail(self) -> dict[str, Any]:
        """Everything except actor and time, as JSON-ready values."""
        data: dict[str, Any] = self.model_dump(mode="json", exclude={"actor", "at"})
        return data

    def to_json(self) -> dict[str, Any]:
        """For live updates: ``{"event": action, "at": ..., "actor": ..., **detail}``."""
        return {
            "event": self.action,
            "at": self.at.isoformat(),
            "actor": self.actor,
            **self.detail(),
        }


class AuditSink(Protocol):
    """Where the actions report what they did. The hub's implementation appends to its
    audit log and may raise: the dispatcher then stops (nothing unaudited flies)."""

    def __call__(self, event: VerifyEvent, /) -> None: ...


def discard(event: VerifyEvent) -> None:
    """A sink that drops events (tests, benches)."""


class EventLog:
    """A sink that keeps events in memory (tests, ``ouie bench verify``, the demo)."""

    def __init__(self) -> None:
        self.events: list[VerifyEvent] = []

    def __call__(self, event: VerifyEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[VerifyEvent]) -> list[VerifyEvent]:
        return [e for e in self.events if isinstance(e, kind)]

    def actions(self) -> list[str]:
        return [e.action for e in self.events]


def to_audit_event(event: VerifyEvent) -> AuditEvent:
    """The audit record of ``event``, as the hub's log stores it."""
    return AuditEvent(
        actor=event.actor,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        detail=event.detail(),
    )


# -- CCTV ---------------------------------------------------------------------------------


class CameraCued(VerifyEvent):
    action: ClassVar[str] = "camera.cued"
    incident_id: str
    camera_id: str
    method: Literal["preset", "absolute"]
    preset_token: str | None = None
    pan: float | None = Field(default=None, description="ONVIF generic space, requested")
    tilt: float | None = None
    zoom: float | None = None
    bearing_deg: float
    tilt_deg: float
    distance_m: float
    command_ms: float = Field(description="incident handed to the cuer → PTZ command answered")
    settled_ms: float | None = Field(
        default=None, description="→ GetStatus reported IDLE at the target, when waited for"
    )
    snapshot_uri: str | None = None
    stream_uri: str | None = None
    approximate: bool = Field(
        default=False, description="framed on an approximate area, not a located point"
    )
    frame_m: float | None = None


class CameraCueFailed(VerifyEvent):
    action: ClassVar[str] = "camera.cue_failed"
    incident_id: str
    camera_id: str
    error: str


class VmsBookmarkSent(VerifyEvent):
    action: ClassVar[str] = "vms.bookmark"
    incident_id: str
    output_id: str
    camera_id: str
    start: datetime
    end: datetime
    delivered: bool
    status: int | None = None


# -- drones -------------------------------------------------------------------------------


class _MissionEvent(VerifyEvent):
    object_type: ClassVar[str] = "drone_mission"
    mission_id: str

    @property
    def object_id(self) -> str:
        return self.mission_id


class DroneMissionPlanned(_MissionEvent):
    action: ClassVar[str] = "drone.mission_planned"
    incident_id: str
    dock_id: str
    mission_hash: str
    sendable: bool
    failed_checks: list[str] = Field(default_factory=list)


class DroneMissionApproved(_MissionEvent):
    action: ClassVar[str] = "drone.mission_approved"
    incident_id: str
    dock_id: str
    role: str
    mission_hash: str
    confirmed_items: list[str] = Field(default_factory=list)
    comment: str = ""


class DroneMissionRefused(_MissionEvent):
    action: ClassVar[str] = "drone.mission_refused"
    incident_id: str
    reason: str


class DroneCommandSent(_MissionEvent):
    action: ClassVar[str] = "drone.command"
    dock_id: str
    command: str
    params: dict[str, float] = Field(default_factory=dict)
    result: str = Field(description="MAV_RESULT / MAV_MISSION_RESULT name, or 'timeout'")
    elapsed_ms: float


class DroneMissionUploaded(_MissionEvent):
    action: ClassVar[str] = "drone.mission_uploaded"
    dock_id: str
    items: int
    approval_to_upload_ms: float


class DroneAbortRequested(_MissionEvent):
    action: ClassVar[str] = "drone.abort"
    dock_id: str
    reason: str = ""


class DroneLaunchFailed(_MissionEvent):
    action: ClassVar[str] = "drone.launch_failed"
    dock_id: str
    error: str


# -- outbound -----------------------------------------------------------------------------


class WebhookDelivered(VerifyEvent):
    action: ClassVar[str] = "webhook.delivered"
    object_type: ClassVar[str] = "webhook"
    output_id: str
    delivery_id: str
    incident_id: str
    attempts: int
    status: int
    latency_ms: float

    @property
    def object_id(self) -> str:
        return self.output_id


class WebhookDeadLettered(VerifyEvent):
    action: ClassVar[str] = "webhook.dead_letter"
    object_type: ClassVar[str] = "webhook"
    output_id: str
    delivery_id: str
    incident_id: str
    attempts: int
    last_error: str

    @property
    def object_id(self) -> str:
        return self.output_id


class AlertPublished(VerifyEvent):
    action: ClassVar[str] = "alert.published"
    incident_id: str
    output_id: str
    channel: Literal["mqtt", "cap"]
    target: str
