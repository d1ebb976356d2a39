"""The hub's side of alarm verification (issue 8): API routes, audit sink, incident hook.

``ouie.verify.service.VerificationService`` does the protocol work (ONVIF cueing, MAVLink
dispatch, webhooks, CAP, MQTT); this module wires it into a ``Hub``:

- ``attach(hub, service)`` makes the service the hub's (``hub.verification``); the
  service must have been built with ``audit_sink(hub)`` so that every verification event
  is appended to the hub's hash-chained audit log (``to_audit_event``);
- ``incident_hook`` is what ``Hub.notify_verification`` calls after each committed
  incident change (fusion: ``created``/``updated``; transitions: ``state_changed``/
  ``closed``): it schedules ``service.on_incident`` on the hub's event loop, never blocking
  ingest or the request;
- ``register_routes`` adds the API routes through ``create_app``'s ``route`` helper, so
  each carries one access rule like every other route:

  | route | access |
  |---|---|
  | ``GET /incidents/{id}/cameras`` | ``incidents:read`` |
  | ``POST /incidents/{id}/camera-cue`` | ``camera:cue`` |
  | ``POST /incidents/{id}/drone-missions`` | ``drone:plan`` |
  | ``POST /drone-missions/{id}/approve`` | ``drone:approve`` (supervisor only) |
  | ``POST /drone-missions/{id}/abort`` | ``drone:abort`` |
  | ``GET /drone-missions`` | ``incidents:read`` (runs and vehicle positions, for the map) |

Without an attached service the routes answer 404 (nothing to verify with on this hub).
``build_service`` makes the service from the hub's ``verify:`` settings
(``ouie.config.hub.HubSettings.verify``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from ouie.config.verify import VerifySettings, load_verify_settings
from ouie.hub import audit
from ouie.hub.auth import Perm, Principal
from ouie.hub.db import Incident
from ouie.hub.service import Hub
from ouie.verify.cctv import CueError
from ouie.verify.dispatch import ApprovalError, DispatchError, MissionRun, SupervisorApproval
from ouie.verify.drone import MissionPlan
from ouie.verify.events import AuditSink, VerifyEvent, to_audit_event
from ouie.verify.incident import IncidentChange, IncidentNotice, IncidentRef
from ouie.verify.service import VerificationService

log = logging.getLogger(__name__)

RouteFn = Callable[..., Callable[[Any], Any]]
#: how long the approve request waits for the launch (upload, arm, take-off) to finish
LAUNCH_WAIT_S = 20.0


# ----------------------------------------------------------------------------- wiring
def audit_sink(hub: Hub) -> AuditSink:
    """Appends each verification event to the hub's hash-chained log (sync, short)."""

    def sink(event: VerifyEvent) -> None:
        with hub.sessions() as session, session.begin():
            audit.record(session, to_audit_event(event))
        hub.metrics.audit_entries.inc()

    return sink


def build_service(hub: Hub, settings: VerifySettings | None = None) -> VerificationService | None:
    """A service from ``settings`` or the hub's ``verify:`` section; None when not configured."""
    if settings is None:
        section = hub.settings.verify
        if section is None:
            return None
        settings = (
            load_verify_settings(section)
            if isinstance(section, Path)
            else VerifySettings.model_validate(section)
        )
    return VerificationService(settings, audit=audit_sink(hub))


async def start_configured(hub: Hub) -> bool:
    """At hub start: build, start and attach the service of the ``verify:`` section."""
    if hub.verification is not None or hub.settings.verify is None:
        return False
    service = build_service(hub)
    if service is None:
        return False
    await service.start(warm_cameras=True)
    attach(hub, service)
    return True


def attach(hub: Hub, service: VerificationService) -> None:
    """Make ``service`` the hub's: the API routes use it, incident changes reach it."""
    hub.verification = service


async def detach(hub: Hub) -> None:
    """Stop background verification work and close the service."""
    service, hub.verification = hub.verification, None
    tasks = list(hub.background)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if service is not None:
        await service.close()


def _spawn(hub: Hub, coro: Any) -> asyncio.Task[Any]:
    task: asyncio.Task[Any] = asyncio.create_task(coro)
    hub.background.add(task)
    task.add_done_callback(hub.background.discard)
    return task


def _refs(hub: Hub, ids: list[str]) -> dict[str, IncidentRef]:
    out: dict[str, IncidentRef] = {}
    with hub.sessions() as session:
        for incident_id in ids:
            row = session.get(Incident, incident_id)
            if row is None:
                continue
            try:
                out[incident_id] = IncidentRef.from_record(row)
            except (ValueError, TypeError) as exc:  # e.g. an incident without a position
                log.warning("verification: incident %s skipped: %s", incident_id, exc)
    return out


_CHANGES: dict[str, IncidentChange] = {
    "created": "created",
    "updated": "updated",
    "state_changed": "state_changed",
    "closed": "closed",
}


async def _notify(hub: Hub, changes: list[tuple[str, str]]) -> None:
    service = hub.verification
    if service is None:
        return
    refs = await asyncio.to_thread(_refs, hub, list(dict.fromkeys(i for i, _ in changes)))
    for incident_id, kind in changes:
        ref = refs.get(incident_id)
        if ref is None:
            continue
        change = _CHANGES.get(kind, "state_changed")
        try:
            await service.on_incident(IncidentNotice(change=change, incident=ref))
        except Exception:
            log.exception("verification: on_incident failed for %s", incident_id)


def incident_hook(hub: Hub, changes: list[tuple[str, str]]) -> None:
    """Schedule ``on_incident`` for committed changes on the hub's loop (from any thread)."""
    loop = hub.loop
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None and (loop is None or running is loop):
        _spawn(hub, _notify(hub, changes))
    elif loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(lambda: _spawn(hub, _notify(hub, changes)))


# ----------------------------------------------------------------------------- bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CueBody(_Body):
    camera_id: str | None = Field(default=None, max_length=64, description="default: the best")


class PlanBody(_Body):
    dock_id: str | None = Field(default=None, max_length=64, description="default: the nearest")


class ApproveBody(_Body):
    mission_hash: str = Field(min_length=64, max_length=64, description="the digest shown")
    confirmed_items: list[str] = Field(default_factory=list, max_length=50)
    comment: str = Field(default="", max_length=2000)


class AbortBody(_Body):
    reason: str = Field(default="", max_length=500)


def plan_json(plan: MissionPlan) -> dict[str, Any]:
    data: dict[str, Any] = plan.model_dump(mode="json")
    data.update(
        digest=plan.digest(),
        sendable=plan.sendable,
        failed_checks=plan.failed_checks,
        declared_items=plan.declared_items,
    )
    return data


def drone_status(service: VerificationService) -> dict[str, Any]:
    """Mission runs and each connected dock's vehicle (for the console map)."""
    vehicles = []
    for dock in service.drones.docks.values():
        state = service.drones.vehicle_state(dock.id)
        vehicles.append(
            {
                "dock_id": dock.id,
                "dock_lat": dock.lat,
                "dock_lon": dock.lon,
                "vehicle": None if state is None else state.to_json(),
            }
        )
    return {"missions": service.drone_status(), "vehicles": vehicles}


# ----------------------------------------------------------------------------- routes
def register_routes(route: RouteFn, hub: Hub) -> None:
    """Add the verification routes with ``create_app``'s ``route`` (one access rule each)."""

    def service() -> VerificationService:
        if hub.verification is None:
            # Not a server fault: this hub has no cameras or docks (no `verify:` section).
            raise HTTPException(404, "verification is not configured on this hub")
        return hub.verification

    def who(request: Request) -> Principal:
        found: Principal = request.state.principal
        return found

    async def incident_ref(incident_id: str) -> IncidentRef:
        refs = await asyncio.to_thread(_refs, hub, [incident_id[:64]])
        ref = refs.get(incident_id[:64])
        if ref is None:
            raise HTTPException(404, "no such incident")
        return ref

    @route("GET", "/incidents/{incident_id}/cameras", Perm.INCIDENTS_READ)
    async def rank_cameras(incident_id: str) -> dict[str, Any]:
        svc = service()
        ref = await incident_ref(incident_id)
        return {"cameras": [c.to_json() for c in svc.rank_cameras(ref)]}

    @route("POST", "/incidents/{incident_id}/camera-cue", Perm.CAMERA_CUE)
    async def camera_cue(incident_id: str, body: CueBody, request: Request) -> dict[str, Any]:
        svc = service()
        started = time.perf_counter()
        ref = await incident_ref(incident_id)
        try:
            result = await svc.cue_camera(
                ref, body.camera_id, actor=who(request).username, started=started
            )
        except CueError as exc:
            raise HTTPException(502, str(exc)) from exc
        data: dict[str, Any] = result.model_dump(mode="json")
        return data

    @route("POST", "/incidents/{incident_id}/drone-missions", Perm.DRONE_PLAN, status_code=201)
    async def drone_plan(incident_id: str, body: PlanBody, request: Request) -> dict[str, Any]:
        svc = service()
        ref = await incident_ref(incident_id)
        try:
            plan = svc.plan_drone(ref, body.dock_id, actor=who(request).username)
        except DispatchError as exc:
            raise HTTPException(409, str(exc)) from exc
        return plan_json(plan)

    @route("POST", "/drone-missions/{mission_id}/approve", Perm.DRONE_APPROVE)
    async def drone_approve(mission_id: str, body: ApproveBody, request: Request) -> dict[str, Any]:
        svc = service()
        principal = who(request)
        try:
            approved = svc.approve_drone(
                SupervisorApproval(
                    user=principal.username,
                    role=principal.role.value,
                    mission_id=mission_id[:64],
                    mission_hash=body.mission_hash,
                    confirmed_items=body.confirmed_items,
                    comment=body.comment,
                )
            )
        except ApprovalError as exc:
            raise HTTPException(403, str(exc)) from exc
        launch = _spawn(hub, svc.launch_drone(approved))
        try:
            run: MissionRun = await asyncio.wait_for(asyncio.shield(launch), LAUNCH_WAIT_S)
        except TimeoutError:
            current = svc.drones.runs.get(approved.plan.mission_id)
            return {"approved": True, "run": current.to_json() if current else None}
        return {"approved": True, "run": run.to_json()}

    @route("POST", "/drone-missions/{mission_id}/abort", Perm.DRONE_ABORT)
    async def drone_abort(mission_id: str, body: AbortBody, request: Request) -> dict[str, Any]:
        svc = service()
        try:
            result = await svc.abort_drone(
                mission_id[:64], actor=who(request).username, reason=body.reason
            )
        except DispatchError as exc:
            raise HTTPException(404, str(exc)) from exc
        run = svc.drones.runs.get(mission_id[:64])
        return {"result": result, "run": run.to_json() if run else None}

    @route("GET", "/drone-missions", Perm.INCIDENTS_READ)
    async def drone_missions() -> dict[str, Any]:
        return drone_status(service())
