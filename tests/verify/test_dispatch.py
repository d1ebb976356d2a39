"""Drone dispatch over real MAVLink (pymavlink) against the loopback vehicle simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ouie.config.drones import DroneDock, FlightRules
from ouie.core.geometry import LocalFrame, bearing_distance
from ouie.verify.dispatch import (
    ApprovalError,
    ApprovedMission,
    DroneDispatcher,
    SupervisorApproval,
)
from ouie.verify.drone import MissionPlan
from ouie.verify.events import (
    DroneCommandSent,
    DroneMissionApproved,
    DroneMissionRefused,
    EventLog,
    VerifyEvent,
)
from tests.verify.conftest import ORIGIN, incident_at
from tests.verify.mavlink_vehicle import MavlinkVehicle

FRAME = LocalFrame(*ORIGIN)
NOW = datetime(2026, 6, 21, 12, 0, tzinfo=UTC)


def make_dispatcher(
    vehicle: MavlinkVehicle, audit: Callable[[VerifyEvent], None], **rules: Any
) -> DroneDispatcher:
    dock = DroneDock(id="dock-1", lat=ORIGIN[0], lon=ORIGIN[1], connection=vehicle.address)
    return DroneDispatcher(
        [dock],
        FlightRules(operator_registration="FRA-OP-1", **rules),
        audit=audit,
        clock=lambda: NOW,
        connect_timeout_s=5.0,
    )


def approval(plan: MissionPlan, **changes: Any) -> SupervisorApproval:
    base: dict[str, Any] = {
        "user": "claire",
        "role": "supervisor",
        "mission_id": plan.mission_id,
        "mission_hash": plan.digest(),
        "confirmed_items": plan.declared_items,
        "at": NOW,
    }
    base.update(changes)
    return SupervisorApproval.model_validate(base)


def target(east: float = 120.0, north: float = 300.0) -> tuple[float, float]:
    return FRAME.to_latlon(east, north)


def wait(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_approved_mission_is_uploaded_launched_and_flown(vehicle: MavlinkVehicle) -> None:
    log = EventLog()
    dispatcher = make_dispatcher(vehicle, log)
    plan = dispatcher.plan(incident_at(*target()), actor="olivier")

    async def go() -> None:
        approved = dispatcher.approve(approval(plan, comment="shots reported"))
        run = await dispatcher.launch(approved)
        assert run.state == "in_flight", run.error
        assert run.approval_to_upload_ms is not None and run.approval_to_upload_ms > 0
        # The vehicle flies out: positions stream in and approach the incident.
        ok = await asyncio.to_thread(
            wait, lambda: 5 in vehicle.v.reached or vehicle.v.orbit_angle is not None, 15.0
        )
        assert ok
        state = dispatcher.vehicle_state("dock-1")
        assert state is not None and state.armed and state.positions > 3
        assert state.relative_alt_m is not None and state.relative_alt_m > 30.0
        assert state.lat is not None and state.lon is not None
        _, from_incident = bearing_distance(
            state.lat, state.lon, plan.incident_lat, plan.incident_lon
        )
        assert from_incident < 60.0
        await dispatcher.close()

    asyncio.run(go())
    # The vehicle got exactly the plan, over the full handshake.
    assert [i.command for i in vehicle.mission] == [i.command for i in plan.items]
    for sent, got in zip(plan.items, vehicle.mission, strict=True):
        assert got.lat == pytest.approx(sent.lat, abs=1e-7)
        assert got.lon == pytest.approx(sent.lon, abs=1e-7)
        assert got.alt == pytest.approx(sent.alt_m)
        assert got.params == pytest.approx((sent.param1, sent.param2, sent.param3, sent.param4))
    assert vehicle.item_requests == list(range(len(plan.items)))
    assert vehicle.command_ids() == [176, 400, 22, 300]
    assert vehicle.commands[2][1][6] == pytest.approx(60.0)  # take-off altitude
    assert vehicle.gcs_heartbeats >= 1
    # Audit: approval recorded before any command, then every command with its ack.
    actions = log.actions()
    assert actions.index("drone.mission_approved") < actions.index("drone.command")
    commands = [e for e in log.events if isinstance(e, DroneCommandSent)]
    assert [(c.command, c.result) for c in commands] == [
        ("mission_upload", "ACCEPTED"),
        ("set_mode_guided", "ACCEPTED"),
        ("arm", "ACCEPTED"),
        ("takeoff", "ACCEPTED"),
        ("mission_start", "ACCEPTED"),
    ]
    approved_event = log.of(DroneMissionApproved)[0]
    assert isinstance(approved_event, DroneMissionApproved)
    assert approved_event.actor == "claire" and approved_event.role == "supervisor"
    assert approved_event.mission_hash == plan.digest()


def test_abort_returns_to_launch_and_lands(vehicle: MavlinkVehicle) -> None:
    log = EventLog()
    dispatcher = make_dispatcher(vehicle, log)
    plan = dispatcher.plan(incident_at(*target(0.0, 600.0)), actor="olivier")

    async def go() -> None:
        run = await dispatcher.launch(dispatcher.approve(approval(plan)))
        assert run.state == "in_flight"
        await asyncio.to_thread(wait, lambda: vehicle.v.alt > 20.0, 10.0)
        result = await dispatcher.abort(plan.mission_id, actor="claire", reason="crowd below")
        assert result == "ACCEPTED"
        assert dispatcher.runs[plan.mission_id].state == "returning"
        landed = await asyncio.to_thread(
            wait, lambda: dispatcher.runs[plan.mission_id].state == "completed", 20.0
        )
        assert landed
        await dispatcher.close()

    asyncio.run(go())
    assert vehicle.command_ids()[-1] == 20
    assert not vehicle.armed and vehicle.v.alt == 0.0
    lat, lon, _ = vehicle.position()
    assert bearing_distance(ORIGIN[0], ORIGIN[1], lat, lon)[1] < 1.0
    assert "drone.abort" in log.actions()
    # The dock is free again: a new mission can be approved.
    again = dispatcher.plan(incident_at(*target()), actor="olivier")
    assert isinstance(dispatcher.approve(approval(again)), ApprovedMission)


def test_only_a_supervisor_can_approve(vehicle: MavlinkVehicle) -> None:
    log = EventLog()
    dispatcher = make_dispatcher(vehicle, log)
    plan = dispatcher.plan(incident_at(*target()), actor="olivier")
    with pytest.raises(ApprovalError, match="only a supervisor"):
        dispatcher.approve(approval(plan, user="olivier", role="operator"))
    with pytest.raises(ApprovalError, match="only a supervisor"):
        dispatcher.approve(approval(plan, role="admin"))
    with pytest.raises(ApprovalError, match="different version"):
        dispatcher.approve(approval(plan, mission_hash="0" * 64))
    with pytest.raises(ApprovalError, match="not confirmed"):
        dispatcher.approve(approval(plan, confirmed_items=["pilot_competency"]))
    with pytest.raises(TypeError):
        ApprovedMission(object(), plan, approval(plan), 0.0)
    refused = log.of(DroneMissionRefused)
    assert len(refused) == 4 and refused[0].actor == "olivier"
    assert vehicle.count_messages == 0 and not vehicle.commands  # nothing was sent


def test_a_rule_breaking_mission_cannot_be_sent(vehicle: MavlinkVehicle) -> None:
    dispatcher = make_dispatcher(vehicle, EventLog(), max_distance_m=200.0)
    plan = dispatcher.plan(incident_at(*target()), actor="olivier")
    assert not plan.sendable and "max_distance" in plan.failed_checks
    with pytest.raises(ApprovalError, match="pre-flight checks failed: max_distance"):
        dispatcher.approve(approval(plan))
    assert vehicle.count_messages == 0


def test_stale_plan_and_double_approval(vehicle: MavlinkVehicle) -> None:
    clock = {"now": NOW}
    dock = DroneDock(id="dock-1", lat=ORIGIN[0], lon=ORIGIN[1], connection=vehicle.address)
    dispatcher = DroneDispatcher(
        [dock], FlightRules(operator_registration="x"), clock=lambda: clock["now"]
    )
    plan = dispatcher.plan(incident_at(*target()), actor="olivier")
    clock["now"] = NOW + timedelta(minutes=10)
    with pytest.raises(ApprovalError, match="plan again"):
        dispatcher.approve(approval(plan, at=clock["now"]))
    fresh = dispatcher.plan(incident_at(*target()), actor="olivier")
    dispatcher.approve(approval(fresh, at=clock["now"]))
    with pytest.raises(ApprovalError, match="already approved"):
        dispatcher.approve(approval(fresh, at=clock["now"]))


def test_failing_audit_sink_sends_nothing(vehicle: MavlinkVehicle) -> None:
    def sink(event: VerifyEvent) -> None:
        if isinstance(event, DroneMissionApproved):
            raise RuntimeError("audit database down")

    dispatcher = make_dispatcher(vehicle, sink)
    plan = dispatcher.plan(incident_at(*target()), actor="olivier")
    with pytest.raises(RuntimeError, match="audit database down"):
        dispatcher.approve(approval(plan))
    time.sleep(0.2)
    assert vehicle.count_messages == 0 and not vehicle.commands


def test_upload_recovers_from_lost_messages() -> None:
    with MavlinkVehicle(
        ORIGIN, time_scale=30.0, heartbeat_s=0.1, ignore_first_count=True, drop_item=3
    ) as vehicle:
        dispatcher = make_dispatcher(vehicle, EventLog())
        plan = dispatcher.plan(incident_at(*target()), actor="olivier")

        async def go() -> None:
            run = await dispatcher.launch(dispatcher.approve(approval(plan)))
            assert run.state == "in_flight", run.error
            await dispatcher.close()

        asyncio.run(go())
        assert vehicle.count_messages == 2  # MISSION_COUNT re-sent after the silence
        assert vehicle.item_requests.count(3) == 2  # item 3 requested again
        assert len(vehicle.mission) == len(plan.items)


def test_arming_refused_fails_the_launch() -> None:
    with MavlinkVehicle(ORIGIN, time_scale=30.0, heartbeat_s=0.1, deny_arm=True) as vehicle:
        log = EventLog()
        dispatcher = make_dispatcher(vehicle, log)
        plan = dispatcher.plan(incident_at(*target()), actor="olivier")

        async def go() -> None:
            run = await dispatcher.launch(dispatcher.approve(approval(plan)))
            assert run.state == "failed" and run.error == "arm: DENIED"
            await dispatcher.close()

        asyncio.run(go())
        assert 22 not in vehicle.command_ids() and 300 not in vehicle.command_ids()
        assert "drone.launch_failed" in log.actions()


def test_no_vehicle_fails_cleanly() -> None:
    dock = DroneDock(id="dock-1", lat=ORIGIN[0], lon=ORIGIN[1], connection="udpout:127.0.0.1:9")
    log = EventLog()
    dispatcher = DroneDispatcher(
        [dock],
        FlightRules(operator_registration="x"),
        audit=log,
        clock=lambda: NOW,
        connect_timeout_s=0.5,
    )
    plan = dispatcher.plan(incident_at(*target()), actor="olivier")

    async def go() -> None:
        run = await dispatcher.launch(dispatcher.approve(approval(plan)))
        assert run.state == "failed" and "HEARTBEAT" in (run.error or "")
        await dispatcher.close()

    asyncio.run(go())


def test_abort_during_upload_cancels_the_launch() -> None:
    with MavlinkVehicle(
        ORIGIN, time_scale=30.0, heartbeat_s=0.1, ignore_first_count=True
    ) as vehicle:
        log = EventLog()
        dispatcher = make_dispatcher(vehicle, log)
        plan = dispatcher.plan(incident_at(*target()), actor="olivier")

        async def go() -> None:
            launch = asyncio.create_task(dispatcher.launch(dispatcher.approve(approval(plan))))
            while vehicle.count_messages < 1:  # the first MISSION_COUNT went unanswered
                await asyncio.sleep(0.01)
            result = await dispatcher.abort(plan.mission_id, actor="claire", reason="cancel")
            run = await launch
            assert result == "cancelled" and run.state == "aborted"
            await dispatcher.close()

        asyncio.run(go())
        assert not vehicle.commands  # never armed, never took off
        upload = next(e for e in log.events if isinstance(e, DroneCommandSent))
        assert upload.command == "mission_upload" and upload.result == "OPERATION_CANCELLED"
