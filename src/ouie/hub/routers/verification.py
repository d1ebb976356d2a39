"""Alarm verification (issue 8): rank and cue cameras, plan, approve and abort drone missions.

| route | access |
|---|---|
| ``GET /incidents/{id}/cameras`` | ``incidents:read`` |
| ``POST /incidents/{id}/camera-cue`` | ``camera:cue`` |
| ``POST /incidents/{id}/drone-missions`` | ``drone:plan`` |
| ``POST /drone-missions/{id}/approve`` | ``drone:approve`` (supervisor only) |
| ``POST /drone-missions/{id}/abort`` | ``drone:abort`` |
| ``GET /drone-missions`` | ``incidents:read`` (runs and vehicle positions, for the map) |

The routes are always there; without an attached service (``ouie.hub.verification.attach``)
they answer 404, since this hub has nothing to verify with.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import ConfigDict, Field

from ouie.core.model_base import StrictModel
from ouie.hub.auth import Perm
from ouie.hub.routers.deps import API_PREFIX, Caller, HubDep, access
from ouie.hub.verification import incident_refs, spawn
from ouie.verify.cctv import CameraCandidate, CueError, CueResult
from ouie.verify.dispatch import (
    ApprovalError,
    DispatchError,
    MissionRun,
    RunState,
    SupervisorApproval,
)
from ouie.verify.drone import MissionPlan
from ouie.verify.incident import IncidentRef
from ouie.verify.mavlink_link import VehicleState
from ouie.verify.service import VerificationService

router = APIRouter(prefix=API_PREFIX, tags=["verification"])

#: how long the approve request waits for the launch (upload, arm, take-off) to finish
LAUNCH_WAIT_S = 20.0


# ----------------------------------------------------------------------------- bodies
class CueBody(StrictModel):
    camera_id: str | None = Field(default=None, max_length=64, description="default: the best")


class PlanBody(StrictModel):
    dock_id: str | None = Field(default=None, max_length=64, description="default: the nearest")


class ApproveBody(StrictModel):
    mission_hash: str = Field(min_length=64, max_length=64, description="the digest shown")
    confirmed_items: list[str] = Field(default_factory=list, max_length=50)
    comment: str = Field(default="", max_length=2000)


class AbortBody(StrictModel):
    reason: str = Field(default="", max_length=500)


# ----------------------------------------------------------------------------- responses
class PresetView(StrictModel):
    token: str
    name: str
    distance_m: float


class CameraView(StrictModel):
    camera_id: str
    name: str
    distance_m: float
    bearing_deg: float
    usable: bool
    in_range: bool
    within_pan: bool
    within_tilt: bool
    nearest_preset: PresetView | None
    reasons: list[str]

    @classmethod
    def of(cls, candidate: CameraCandidate) -> CameraView:
        return cls.model_validate(candidate.to_json())


class CameraRanking(StrictModel):
    cameras: list[CameraView]


class DronePlan(MissionPlan):
    """The plan as the supervisor reviews it. ``MissionPlan`` computes digest, sendable and
    the check lists; here they are fields under other Python names (the plan's own
    properties keep those names), with the JSON names the console reads."""

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    digest_: str = Field(alias="digest", description="what an approval must quote")
    sendable_: bool = Field(alias="sendable", description="no automatic check failed")
    failed_checks_: list[str] = Field(alias="failed_checks")
    declared_items_: list[str] = Field(alias="declared_items", description="to confirm")

    @classmethod
    def of(cls, plan: MissionPlan) -> DronePlan:
        return cls(
            **dict(plan),
            digest_=plan.digest(),
            sendable_=plan.sendable,
            failed_checks_=plan.failed_checks,
            declared_items_=plan.declared_items,
        )


class VehicleView(StrictModel):
    connected: bool
    armed: bool
    custom_mode: int | None
    lat: float | None
    lon: float | None
    relative_alt_m: float | None
    heading_deg: float | None
    ground_speed_m_s: float | None
    mission_current: int | None
    last_reached: int | None

    @classmethod
    def of(cls, state: VehicleState) -> VehicleView:
        return cls.model_validate(state.to_json())


class CommandView(StrictModel):
    command: str
    result: str


class RunView(StrictModel):
    mission_id: str
    dock_id: str
    incident_id: str
    state: RunState
    approval_to_upload_ms: float | None
    commands: list[CommandView]
    error: str | None
    vehicle: VehicleView

    @classmethod
    def of(cls, run: MissionRun) -> RunView:
        return cls(
            mission_id=run.mission_id,
            dock_id=run.dock_id,
            incident_id=run.incident_id,
            state=run.state,
            approval_to_upload_ms=run.approval_to_upload_ms,
            commands=[CommandView(command=c, result=r) for c, r in run.commands],
            error=run.error,
            vehicle=VehicleView.of(run.vehicle),
        )

    @classmethod
    def maybe(cls, run: MissionRun | None) -> RunView | None:
        return None if run is None else cls.of(run)


class Approved(StrictModel):
    approved: Literal[True]
    run: RunView | None = Field(description="null when the launch is still being prepared")


class Aborted(StrictModel):
    result: str
    run: RunView | None


class DockVehicle(StrictModel):
    dock_id: str
    dock_lat: float
    dock_lon: float
    vehicle: VehicleView | None


class DroneStatus(StrictModel):
    missions: list[RunView]
    vehicles: list[DockVehicle]


# ----------------------------------------------------------------------------- dependencies
def attached_service(hub: HubDep) -> VerificationService:
    if hub.verification is None:
        # Not a server fault: this hub has no cameras or docks (no `verify:` section).
        raise HTTPException(404, "verification is not configured on this hub")
    return hub.verification


ServiceDep = Annotated[VerificationService, Depends(attached_service)]


async def incident_ref(hub: HubDep, incident_id: str) -> IncidentRef:
    refs = await asyncio.to_thread(incident_refs, hub, [incident_id[:64]])
    ref = refs.get(incident_id[:64])
    if ref is None:
        raise HTTPException(404, "no such incident")
    return ref


IncidentDep = Annotated[IncidentRef, Depends(incident_ref)]


# ----------------------------------------------------------------------------- routes
@router.get(
    "/incidents/{incident_id}/cameras",
    response_model=CameraRanking,
    **access(Perm.INCIDENTS_READ),
)
async def rank_cameras(svc: ServiceDep, incident: IncidentDep) -> CameraRanking:
    return CameraRanking(cameras=[CameraView.of(c) for c in svc.rank_cameras(incident)])


@router.post(
    "/incidents/{incident_id}/camera-cue", response_model=CueResult, **access(Perm.CAMERA_CUE)
)
async def camera_cue(
    body: CueBody, svc: ServiceDep, who: Caller, hub: HubDep, incident_id: str
) -> CueResult:
    started = time.perf_counter()  # before the incident lookup: the cue's latency as felt
    incident = await incident_ref(hub, incident_id)
    try:
        return await svc.cue_camera(incident, body.camera_id, actor=who.username, started=started)
    except CueError as exc:
        raise HTTPException(502, str(exc)) from exc


@router.post(
    "/incidents/{incident_id}/drone-missions",
    status_code=201,
    response_model=DronePlan,
    **access(Perm.DRONE_PLAN),
)
async def drone_plan(
    body: PlanBody, svc: ServiceDep, who: Caller, incident: IncidentDep
) -> DronePlan:
    try:
        plan = svc.plan_drone(incident, body.dock_id, actor=who.username)
    except DispatchError as exc:
        raise HTTPException(409, str(exc)) from exc
    return DronePlan.of(plan)


@router.post(
    "/drone-missions/{mission_id}/approve",
    response_model=Approved,
    **access(Perm.DRONE_APPROVE),
)
async def drone_approve(
    mission_id: str, body: ApproveBody, svc: ServiceDep, who: Caller, hub: HubDep
) -> Approved:
    try:
        approved = svc.approve_drone(
            SupervisorApproval(
                user=who.username,
                role=who.role.value,
                mission_id=mission_id[:64],
                mission_hash=body.mission_hash,
                confirmed_items=body.confirmed_items,
                comment=body.comment,
            )
        )
    except ApprovalError as exc:
        raise HTTPException(403, str(exc)) from exc
    launch = spawn(hub, svc.launch_drone(approved))
    try:
        run: MissionRun | None = await asyncio.wait_for(asyncio.shield(launch), LAUNCH_WAIT_S)
    except TimeoutError:  # still launching: answer with what is known, the launch goes on
        run = svc.drones.runs.get(approved.plan.mission_id)
    return Approved(approved=True, run=RunView.maybe(run))


@router.post(
    "/drone-missions/{mission_id}/abort", response_model=Aborted, **access(Perm.DRONE_ABORT)
)
async def drone_abort(mission_id: str, body: AbortBody, svc: ServiceDep, who: Caller) -> Aborted:
    try:
        result = await svc.abort_drone(mission_id[:64], actor=who.username, reason=body.reason)
    except DispatchError as exc:
        raise HTTPException(404, str(exc)) from exc
    return Aborted(result=result, run=RunView.maybe(svc.drones.runs.get(mission_id[:64])))


@router.get("/drone-missions", response_model=DroneStatus, **access(Perm.INCIDENTS_READ))
async def drone_missions(svc: ServiceDep) -> DroneStatus:
    """Mission runs and each connected dock's vehicle (for the console map)."""
    vehicles = []
    for dock in svc.drones.docks.values():
        state = svc.drones.vehicle_state(dock.id)
        vehicles.append(
            DockVehicle(
                dock_id=dock.id,
                dock_lat=dock.lat,
                dock_lon=dock.lon,
                vehicle=None if state is None else VehicleView.of(state),
            )
        )
    missions = [RunView.of(run) for run in svc.drones.runs.values()]
    return DroneStatus(missions=missions, vehicles=vehicles)
