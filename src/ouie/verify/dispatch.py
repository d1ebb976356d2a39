"""Drone dispatch: plan → supervisor approval → upload and launch → track → abort/RTL.

Safety rules this module enforces, not the caller:

- A mission is only sent after ``approve`` returned an ``ApprovedMission``, which it only
  does for a ``SupervisorApproval`` whose role is ``supervisor``, bound to the plan's
  digest (what the vehicle will fly), given within ``flight_rules.plan_valid_s`` of the
  plan, confirming every declared checklist item, for a plan whose automatic checks all
  passed. ``ApprovedMission`` cannot be built outside ``approve``.
- The approval is recorded (``DroneMissionApproved``) before anything goes to the vehicle:
  if the audit sink fails, nothing is sent. Refusals are recorded too.
- Every command (mission upload, mode, arm, take-off, mission start, RTL) is recorded as
  ``DroneCommandSent`` with its acknowledgement.
- ``abort`` works at any time: before arming it cancels the launch (the mission upload is
  cancelled with MISSION_ACK OPERATION_CANCELLED); once armed it commands
  RETURN_TO_LAUNCH, falling back to the RTL flight mode if the command is refused.
- One mission per dock at a time.

Launch sequence (ArduCopter): upload the mission, GUIDED mode, arm, NAV_TAKEOFF to the
transit altitude, MISSION_START (the autopilot switches to AUTO and flies the plan, whose
take-off item is then already satisfied).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from ouie.config.drones import DroneDock, FlightRules
from ouie.core.geometry import bearing_distance
from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now
from ouie.verify.drone import MissionPlan, NoFlyZone, plan_mission
from ouie.verify.events import (
    AuditSink,
    DroneAbortRequested,
    DroneCommandSent,
    DroneLaunchFailed,
    DroneMissionApproved,
    DroneMissionPlanned,
    DroneMissionRefused,
    DroneMissionUploaded,
    discard,
)
from ouie.verify.incident import IncidentRef
from ouie.verify.mavlink_link import MavlinkLink, VehicleState

log = logging.getLogger(__name__)

SUPERVISOR_ROLE = "supervisor"


class SupervisorApproval(StrictModel):
    """A user's explicit go for one plan. The hub builds it from the authenticated user."""

    user: str = Field(min_length=1, max_length=64)
    role: str = Field(description="the user's role; must be 'supervisor'")
    mission_id: str
    mission_hash: str = Field(description="MissionPlan.digest() the user saw")
    confirmed_items: list[str] = Field(
        default_factory=list, description="ids of the declared checklist items confirmed"
    )
    comment: str = Field(default="", max_length=2000)
    at: AwareDatetime = Field(default_factory=utc_now)


class ApprovalError(PermissionError):
    """The approval was refused; the message says why (shown to the user)."""


class DispatchError(RuntimeError):
    pass


_APPROVAL_KEY = object()


class ApprovedMission:
    """A plan with a valid supervisor approval. Only ``DroneDispatcher.approve`` makes one."""

    def __init__(
        self, key: object, plan: MissionPlan, approval: SupervisorApproval, approved_perf: float
    ) -> None:
        if key is not _APPROVAL_KEY:
            raise TypeError("ApprovedMission is only created by DroneDispatcher.approve")
        self.plan = plan
        self.approval = approval
        self.approved_perf = approved_perf

    def __repr__(self) -> str:
        return f"ApprovedMission({self.plan.mission_id!r}, by={self.approval.user!r})"


RunState = Literal[
    "uploading", "launching", "in_flight", "returning", "aborted", "failed", "completed"
]


@dataclass
class MissionRun:
    mission_id: str
    dock_id: str
    incident_id: str
    state: RunState = "uploading"
    approval_to_upload_ms: float | None = None
    commands: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    cancel: bool = False
    armed_seen: bool = False  # armed at some point (ARM accepted or an armed HEARTBEAT)
    armed_at: float | None = None  # time.monotonic() of the ARM ack / first armed HEARTBEAT
    vehicle: VehicleState = field(default_factory=VehicleState)

    def to_json(self) -> dict[str, object]:
        return {
            "mission_id": self.mission_id,
            "dock_id": self.dock_id,
            "incident_id": self.incident_id,
            "state": self.state,
            "approval_to_upload_ms": self.approval_to_upload_ms,
            "commands": [{"command": c, "result": r} for c, r in self.commands],
            "error": self.error,
            "vehicle": self.vehicle.to_json(),
        }


LinkFactory = Callable[[DroneDock], MavlinkLink]


def default_link(dock: DroneDock) -> MavlinkLink:
    return MavlinkLink(
        dock.connection, target_system=dock.target_system, target_component=dock.target_component
    )


class DroneDispatcher:
    def __init__(
        self,
        docks: list[DroneDock],
        rules: FlightRules,
        zones: list[NoFlyZone] | None = None,
        *,
        audit: AuditSink = discard,
        link_factory: LinkFactory = default_link,
        clock: Callable[[], datetime] = utc_now,
        connect_timeout_s: float = 10.0,
    ) -> None:
        ids = [d.id for d in docks]
        if len(ids) != len(set(ids)):
            raise ValueError("dock ids must be unique")
        self.docks = {d.id: d for d in docks}
        self.rules = rules
        self.zones = list(zones or [])
        self.audit = audit
        self.link_factory = link_factory
        self.clock = clock
        self.connect_timeout_s = connect_timeout_s
        self.plans: dict[str, MissionPlan] = {}
        self.runs: dict[str, MissionRun] = {}
        self._approved: set[str] = set()
        self._links: dict[str, MavlinkLink] = {}
        self._active: dict[str, str] = {}  # dock id → mission id
        self._launches: dict[str, asyncio.Task[object]] = {}

    # -- planning -------------------------------------------------------------------------

    def docks_for(self, incident: IncidentRef) -> list[tuple[DroneDock, float]]:
        """Docks of the incident's site with their distance to it, nearest first."""
        found = [
            (d, bearing_distance(d.lat, d.lon, incident.lat, incident.lon)[1])
            for d in self.docks.values()
            if d.site is None or d.site == incident.site
        ]
        return sorted(found, key=lambda pair: pair[1])

    def plan(self, incident: IncidentRef, dock_id: str | None = None, *, actor: str) -> MissionPlan:
        """Plan a mission (nearest dock by default) and record it; it may not be sendable."""
        if dock_id is None:
            candidates = self.docks_for(incident)
            if not candidates:
                raise DispatchError(f"no drone dock serves site {incident.site}")
            in_range = [d for d, dist in candidates if dist <= d.max_range_m]
            dock = (in_range or [candidates[0][0]])[0]
        else:
            if dock_id not in self.docks:
                raise DispatchError(f"unknown dock {dock_id!r}")
            dock = self.docks[dock_id]
        plan = plan_mission(
            dock, incident, self.rules, self.zones, planned_by=actor, at=self.clock()
        )
        self.plans[plan.mission_id] = plan
        self.audit(
            DroneMissionPlanned(
                actor=actor,
                mission_id=plan.mission_id,
                incident_id=incident.id,
                dock_id=dock.id,
                mission_hash=plan.digest(),
                sendable=plan.sendable,
                failed_checks=plan.failed_checks,
            )
        )
        return plan

    # -- approval -------------------------------------------------------------------------

    def _refuse(self, plan: MissionPlan | None, approval: SupervisorApproval, reason: str) -> None:
        self.audit(
            DroneMissionRefused(
                actor=approval.user,
                mission_id=approval.mission_id,
                incident_id=plan.incident_id if plan else "",
                reason=reason,
            )
        )
        raise ApprovalError(reason)

    def approve(self, approval: SupervisorApproval) -> ApprovedMission:
        """Check and record ``approval``; the result is what ``launch`` accepts."""
        perf = time.perf_counter()
        plan = self.plans.get(approval.mission_id)
        if plan is None:
            self._refuse(None, approval, f"no planned mission {approval.mission_id}")
            raise AssertionError  # unreachable: _refuse raises
        if approval.role != SUPERVISOR_ROLE:
            self._refuse(
                plan,
                approval,
                f"only a supervisor may approve a flight ({approval.user} is {approval.role})",
            )
        if approval.mission_hash != plan.digest():
            self._refuse(plan, approval, "the approval is for a different version of the plan")
        if approval.mission_id in self._approved:
            self._refuse(plan, approval, "this mission was already approved")
        if not plan.sendable:
            self._refuse(
                plan, approval, "pre-flight checks failed: " + ", ".join(plan.failed_checks)
            )
        missing = [i for i in plan.declared_items if i not in approval.confirmed_items]
        if missing:
            self._refuse(plan, approval, "checklist items not confirmed: " + ", ".join(missing))
        age = (self.clock() - plan.planned_at).total_seconds()
        if age > self.rules.plan_valid_s:
            self._refuse(plan, approval, f"the plan is {age:.0f} s old; plan again")
        busy = self._active.get(plan.dock_id)
        if busy is not None:
            self._refuse(plan, approval, f"dock {plan.dock_id} is flying mission {busy}")
        # Recorded before anything is sent: a failing sink raises here and nothing flies.
        self.audit(
            DroneMissionApproved(
                actor=approval.user,
                role=approval.role,
                mission_id=plan.mission_id,
                incident_id=plan.incident_id,
                dock_id=plan.dock_id,
                mission_hash=approval.mission_hash,
                confirmed_items=sorted(set(approval.confirmed_items)),
                comment=approval.comment,
            )
        )
        self._approved.add(plan.mission_id)
        return ApprovedMission(_APPROVAL_KEY, plan, approval, perf)

    # -- vehicle --------------------------------------------------------------------------

    async def link(self, dock_id: str) -> MavlinkLink:
        """The dock's link, opened on first use (waits for the vehicle's HEARTBEAT)."""
        link = self._links.get(dock_id)
        if link is None or not link.is_open:
            link = self.link_factory(self.docks[dock_id])
            await asyncio.to_thread(link.open, self.connect_timeout_s)
            self._links[dock_id] = link
        return link

    def vehicle_state(self, dock_id: str) -> VehicleState | None:
        link = self._links.get(dock_id)
        return None if link is None else link.state

    async def _command(
        self,
        run: MissionRun,
        actor: str,
        name: str,
        call: Callable[[], str],
        params: dict[str, float] | None = None,
    ) -> str:
        started = time.perf_counter()
        result = await asyncio.to_thread(call)
        run.commands.append((name, result))
        self.audit(
            DroneCommandSent(
                actor=actor,
                mission_id=run.mission_id,
                dock_id=run.dock_id,
                command=name,
                params=params or {},
                result=result,
                elapsed_ms=(time.perf_counter() - started) * 1000.0,
            )
        )
        return result

    async def launch(self, approved: ApprovedMission) -> MissionRun:
        """Upload and start the approved mission; returns once the vehicle flies it."""
        if not isinstance(approved, ApprovedMission):
            raise TypeError("launch needs the ApprovedMission that approve() returned")
        plan, approval = approved.plan, approved.approval
        if plan.mission_id in self.runs:
            raise DispatchError(f"mission {plan.mission_id} was already launched")
        waited = (self.clock() - approval.at).total_seconds()
        run = MissionRun(plan.mission_id, plan.dock_id, plan.incident_id)
        self.runs[plan.mission_id] = run
        if waited > self.rules.launch_within_s:
            return self._fail(run, approval.user, f"approval is {waited:.0f} s old; approve again")
        if self._active.get(plan.dock_id):
            return self._fail(run, approval.user, f"dock {plan.dock_id} is busy")
        self._active[plan.dock_id] = plan.mission_id
        task = asyncio.current_task()
        if task is not None:
            self._launches[plan.mission_id] = task
        try:
            return await self._launch(approved, run)
        except asyncio.CancelledError:
            run.state = "aborted"
            raise
        except Exception as exc:
            self._active.pop(plan.dock_id, None)
            return self._fail(run, approval.user, f"{type(exc).__name__}: {exc}")
        finally:
            self._launches.pop(plan.mission_id, None)

    def _fail(self, run: MissionRun, actor: str, error: str) -> MissionRun:
        run.state = "failed"
        run.error = error
        self.audit(
            DroneLaunchFailed(
                actor=actor, mission_id=run.mission_id, dock_id=run.dock_id, error=error
            )
        )
        return run

    async def _launch(self, approved: ApprovedMission, run: MissionRun) -> MissionRun:
        plan, actor = approved.plan, approved.approval.user
        link = await self.link(plan.dock_id)

        def track(state: VehicleState) -> None:
            run.vehicle = state
            if state.armed:
                run.armed_seen = True
                if run.armed_at is None:
                    run.armed_at = state.last_heartbeat
            elif (
                run.armed_at is not None
                and state.last_heartbeat is not None
                and state.last_heartbeat > run.armed_at
                and run.state in ("in_flight", "returning")
            ):
                # Only a HEARTBEAT received after arming says "landed": until then states
                # still carry the pre-arming "disarmed" flag and must not end the mission.
                # Landed and disarmed after the flight: the mission is over, the dock free.
                self.complete(run.mission_id)

        link.listeners.append(track)
        result = await self._command(
            run,
            actor,
            "mission_upload",
            lambda: link.upload_mission(plan.items, cancelled=lambda: run.cancel),
            {"items": float(len(plan.items))},
        )
        if result != "ACCEPTED":
            self._active.pop(plan.dock_id, None)
            if run.cancel:
                run.state = "aborted"
                return run
            return self._fail(run, actor, f"mission upload: {result}")
        run.approval_to_upload_ms = (time.perf_counter() - approved.approved_perf) * 1000.0
        self.audit(
            DroneMissionUploaded(
                actor=actor,
                mission_id=plan.mission_id,
                dock_id=plan.dock_id,
                items=len(plan.items),
                approval_to_upload_ms=run.approval_to_upload_ms,
            )
        )
        run.state = "launching"
        steps: list[tuple[str, Callable[[], str], dict[str, float]]] = [
            ("set_mode_guided", lambda: link.set_mode("GUIDED"), {"custom_mode": 4.0}),
            ("arm", link.arm, {}),
            (
                "takeoff",
                lambda: link.takeoff(plan.transit_altitude_m),
                {"altitude_m": plan.transit_altitude_m},
            ),
            ("mission_start", link.start_mission, {}),
        ]
        for name, call, params in steps:
            if run.cancel:
                break
            result = await self._command(run, actor, name, call, params)
            if name == "arm" and result == "ACCEPTED":
                run.armed_seen = True
                run.armed_at = time.monotonic()
            if result != "ACCEPTED":
                if name != "set_mode_guided":  # armed or maybe armed: bring it home
                    await self._rtl(run, "system")
                self._active.pop(plan.dock_id, None)
                return self._fail(run, actor, f"{name}: {result}")
        if run.cancel:
            if link.state.armed:
                await self._rtl(run, "system")
            run.state = "aborted"
            self._active.pop(plan.dock_id, None)
            return run
        run.state = "in_flight"
        return run

    async def _rtl(self, run: MissionRun, actor: str) -> str:
        link = self._links.get(run.dock_id)
        if link is None:
            return "not_connected"
        result = await self._command(run, actor, "return_to_launch", link.return_to_launch)
        if result != "ACCEPTED":
            result = await self._command(
                run, actor, "set_mode_rtl", lambda: link.set_mode("RTL"), {"custom_mode": 6.0}
            )
        return result

    async def abort(self, mission_id: str, *, actor: str, reason: str = "") -> str:
        """Stop the mission now: cancel a launch in progress, RTL a vehicle in the air."""
        run = self.runs.get(mission_id)
        if run is None:
            raise DispatchError(f"mission {mission_id} was not launched")
        self.audit(
            DroneAbortRequested(
                actor=actor, mission_id=mission_id, dock_id=run.dock_id, reason=reason
            )
        )
        run.cancel = True
        link = self._links.get(run.dock_id)
        result = "cancelled"
        if link is not None and (link.state.armed or run.state in ("launching", "in_flight")):
            result = await self._rtl(run, actor)
            if run.state != "completed":  # it may have landed while the command was acked
                run.state = "returning"
        launch = self._launches.get(mission_id)
        if launch is not None and run.state == "uploading":
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(launch), 5.0)
        return result

    def complete(self, mission_id: str) -> None:
        """Mark a mission finished (vehicle landed and disarmed); frees the dock."""
        run = self.runs.get(mission_id)
        if run is not None:
            run.state = "completed"
            self._active.pop(run.dock_id, None)

    async def close(self) -> None:
        links, self._links = list(self._links.values()), {}
        for link in links:
            await asyncio.to_thread(link.close)
