"""``VerificationService``: the one object the hub builds to offer verification actions.

The hub creates it from ``VerifySettings`` with an audit sink that appends to its audit
log, ``await service.start()``, then calls:

- ``on_incident(IncidentNotice)`` after each incident change it commits → webhooks, CAP,
  MQTT; and an automatic camera cue for a new incident of a class in
  ``cueing.auto_cue_labels`` (actor ``system:auto-cue``);
- ``rank_cameras(incident)`` / ``cue_camera(incident, camera_id, actor=user)`` for the
  operator's cue button (and VMS bookmarks after it);
- ``plan_drone(incident, dock_id, actor=user)`` → ``MissionPlan`` with its checklist;
  ``approve_drone(SupervisorApproval)`` (the hub fills user and role from the session);
  ``launch_drone(approved)``; ``abort_drone(mission_id, actor=user)`` at any time;
  ``drone_status()`` for the map;
- ``close()`` at shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ouie.config.verify import VerifySettings
from ouie.core.timebase import utc_now
from ouie.verify.cctv import CameraCandidate, CameraCuer, CueError, CueResult
from ouie.verify.credentials import SecretBox, SecretKeyError
from ouie.verify.dead_letters import DeadLetterStore, JsonlDeadLetters, MemoryDeadLetters
from ouie.verify.dispatch import (
    ApprovedMission,
    DroneDispatcher,
    LinkFactory,
    MissionRun,
    SupervisorApproval,
    default_link,
)
from ouie.verify.drone import MissionPlan, NoFlyZone, load_no_fly_zones
from ouie.verify.events import AuditSink, discard
from ouie.verify.incident import IncidentNotice, IncidentRef
from ouie.verify.outputs import Outputs
from ouie.verify.plugin import OutputContext

log = logging.getLogger(__name__)

AUTO_CUE_ACTOR = "system:auto-cue"


def _needs_secrets(settings: VerifySettings) -> bool:
    if any(c.password_enc for c in settings.cameras):
        return True
    return any(
        getattr(o, "secret_enc", None) or getattr(o, "password_enc", None) for o in settings.outputs
    )


def load_secrets(settings: VerifySettings) -> SecretBox | None:
    """The key box; required when any credential is configured, else optional."""
    try:
        return SecretBox.load(settings.secrets.key_file)
    except SecretKeyError:
        if _needs_secrets(settings):
            raise
        return None


class VerificationService:
    def __init__(
        self,
        settings: VerifySettings,
        *,
        audit: AuditSink = discard,
        secrets: SecretBox | None = None,
        dead_letters: DeadLetterStore | None = None,
        link_factory: LinkFactory = default_link,
        clock: Callable[[], datetime] = utc_now,
        output_context: OutputContext | None = None,
    ) -> None:
        self.settings = settings
        self.audit = audit
        self.secrets = secrets if secrets is not None else load_secrets(settings)
        if dead_letters is None:
            dead_letters = (
                JsonlDeadLetters(settings.dead_letter_file)
                if settings.dead_letter_file
                else MemoryDeadLetters()
            )
        self.dead_letters = dead_letters
        zones: list[NoFlyZone] = (
            load_no_fly_zones(settings.flight_rules.no_fly_geojson)
            if settings.flight_rules.no_fly_geojson
            else []
        )
        self.cuer = CameraCuer(settings.cameras, self.secrets, audit)
        self.drones = DroneDispatcher(
            settings.docks,
            settings.flight_rules,
            zones,
            audit=audit,
            link_factory=link_factory,
            clock=clock,
        )
        ctx = output_context or OutputContext(
            secrets=self.secrets, audit=audit, dead_letters=dead_letters
        )
        self.outputs = Outputs(list(settings.outputs), ctx)

    async def start(self, *, warm_cameras: bool = False) -> None:
        await self.outputs.start()
        if warm_cameras:
            await self.cuer.warm_up()

    # -- incidents ------------------------------------------------------------------------

    async def on_incident(self, notice: IncidentNotice) -> CueResult | None:
        """Fan an incident change out; auto-cue a camera when configured for its class."""
        await self.outputs.on_incident(notice)
        incident = notice.incident
        if notice.change == "created" and incident.label in self.settings.cueing.auto_cue_labels:
            try:
                return await self.cue_camera(incident, actor=AUTO_CUE_ACTOR)
            except CueError as exc:
                log.warning("auto-cue for incident %s: %s", incident.id, exc)
        return None

    # -- cameras --------------------------------------------------------------------------

    def rank_cameras(self, incident: IncidentRef) -> list[CameraCandidate]:
        return self.cuer.rank(incident)

    async def cue_camera(
        self,
        incident: IncidentRef,
        camera_id: str | None = None,
        *,
        actor: str,
        started: float | None = None,
    ) -> CueResult:
        result = await self.cuer.cue(
            incident,
            camera_id,
            actor=actor,
            wait_settled_s=self.settings.cueing.wait_settled_s,
            started=started,
        )
        await self.outputs.on_cue(incident, result, actor)
        return result

    # -- drones ---------------------------------------------------------------------------

    def plan_drone(
        self, incident: IncidentRef, dock_id: str | None = None, *, actor: str
    ) -> MissionPlan:
        return self.drones.plan(incident, dock_id, actor=actor)

    def approve_drone(self, approval: SupervisorApproval) -> ApprovedMission:
        return self.drones.approve(approval)

    async def launch_drone(self, approved: ApprovedMission) -> MissionRun:
        return await self.drones.launch(approved)

    async def abort_drone(self, mission_id: str, *, actor: str, reason: str = "") -> str:
        return await self.drones.abort(mission_id, actor=actor, reason=reason)

    def drone_status(self) -> list[dict[str, Any]]:
        """Every mission run with the vehicle's last position (for the console map)."""
        return [run.to_json() for run in self.drones.runs.values()]

    async def close(self) -> None:
        await self.outputs.close()
        await self.cuer.close()
        await self.drones.close()
