"""Verification through the hub's API (issue 8), per role, against the loopback peers:
a real ONVIF PTZ device (SOAP over HTTP) and a MAVLink vehicle (UDP), both started by
``ouie.sim.verify_demo.start_demo_verification`` at the Saint-Étienne site."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from ouie.core.labels import EventLabel
from ouie.core.timebase import utc_now
from ouie.hub import auth
from ouie.hub.db import AuditEntry, Incident, User
from ouie.sim.verify_demo import DemoVerification, start_demo_verification
from ouie.verify.drone import NoFlyZone
from tests.web.hubenv import ROLES, HubEnv, client_hub

pytestmark = pytest.mark.needs("pymavlink", "onvif")

PLACE = (45.44005, 4.38705)  # in the square


@dataclass
class Env:
    hub_env: HubEnv
    client: TestClient
    demo: DemoVerification
    tokens: dict[str, str]
    incident_id: str
    db: Path

    def call(self, role: str, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return self.client.request(method, "/api/v1" + path, json=body, headers=headers)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("verify-hub")
    with client_hub(tmp) as (hub_env, client):
        hub = hub_env.hub
        tokens: dict[str, str] = {}
        with hub.sessions() as session, session.begin():
            for role in ROLES:
                user = session.execute(select(User).where(User.username == role)).scalar_one()
                tokens[role] = auth.create_api_token(session, user, "test", utc_now())
        demo = client.portal.call(_start, hub)  # type: ignore[union-attr]
        try:
            hub_env.sound(EventLabel.GUNSHOT, *PLACE)
            client.portal.call(hub.drain)  # type: ignore[union-attr]
            with hub.sessions() as session:
                row = session.execute(select(Incident)).scalars().first()
                assert row is not None
                incident_id = row.id
            yield Env(hub_env, client, demo, tokens, incident_id, tmp / "hub.sqlite3")
        finally:
            client.portal.call(demo.close)  # type: ignore[union-attr]


async def _start(hub: Any) -> DemoVerification:
    return await start_demo_verification(hub, time_scale=5.0, warm_cameras=False)


def _actions(env: Env, object_id: str) -> list[tuple[str, str]]:
    with env.hub_env.hub.sessions() as session:
        rows = session.execute(
            select(AuditEntry.actor, AuditEntry.action)
            .where(AuditEntry.object_id == object_id)
            .order_by(AuditEntry.seq)
        ).all()
    return [(a, b) for a, b in rows]


def test_cameras_are_ranked_for_any_reader(env: Env) -> None:
    response = env.call("viewer", "GET", f"/incidents/{env.incident_id}/cameras")
    assert response.status_code == 200, response.text
    cameras = response.json()["cameras"]
    assert {c["camera_id"] for c in cameras} == set(env.demo.devices)


def test_operator_cues_a_camera_viewer_and_auditor_cannot(env: Env) -> None:
    path = f"/incidents/{env.incident_id}/camera-cue"
    for role in ("viewer", "auditor"):
        assert env.call(role, "POST", path, {}).status_code == 403
    response = env.call("operator", "POST", path, {"camera_id": "cam-place-ne"})
    assert response.status_code == 200, response.text
    cue = response.json()
    assert cue["camera_id"] == "cam-place-ne" and cue["method"] == "absolute"
    assert cue["snapshot_uri"].endswith("/snapshot.jpg")
    assert cue["stream_uri"].startswith("rtsp://")
    device = env.demo.devices["cam-place-ne"]
    moves = device.calls_of("AbsoluteMove")
    assert moves and moves[-1].authenticated
    assert ("operator", "camera.cued") in _actions(env, env.incident_id)
    assert env.call("operator", "POST", path, {"camera_id": "nope"}).status_code == 502


def test_operator_plans_but_cannot_approve_supervisor_approves_and_aborts(env: Env) -> None:
    response = env.call("operator", "POST", f"/incidents/{env.incident_id}/drone-missions", {})
    assert response.status_code == 201, response.text
    plan = response.json()
    mission = plan["mission_id"]
    assert plan["sendable"], plan["failed_checks"]
    assert len(plan["digest"]) == 64
    body = {"mission_hash": plan["digest"], "confirmed_items": plan["declared_items"]}
    for role in ("operator", "viewer", "auditor", "admin"):
        assert env.call(role, "POST", f"/drone-missions/{mission}/approve", body).status_code == 403
    # a supervisor who did not confirm the declared items is refused (and it is audited)
    partial = {"mission_hash": plan["digest"], "confirmed_items": []}
    refused = env.call("supervisor", "POST", f"/drone-missions/{mission}/approve", partial)
    assert refused.status_code == 403 and "not confirmed" in refused.json()["detail"]
    response = env.call("supervisor", "POST", f"/drone-missions/{mission}/approve", body)
    assert response.status_code == 200, response.text
    run = response.json()["run"]
    assert run["state"] == "in_flight", run
    assert [c["command"] for c in run["commands"]] == [
        "mission_upload",
        "set_mode_guided",
        "arm",
        "takeoff",
        "mission_start",
    ]
    assert env.demo.vehicle is not None and len(env.demo.vehicle.mission) == 7
    deadline = time.monotonic() + 10
    position = None
    while time.monotonic() < deadline:
        status = env.call("viewer", "GET", "/drone-missions").json()
        vehicle = next(m for m in status["missions"] if m["mission_id"] == mission)["vehicle"]
        if vehicle["lat"] is not None and vehicle["relative_alt_m"] > 10.0:
            position = vehicle
            break
        time.sleep(0.1)
    assert position is not None, "no airborne position reported"
    assert env.call("viewer", "POST", f"/drone-missions/{mission}/abort", {}).status_code == 403
    aborted = env.call("operator", "POST", f"/drone-missions/{mission}/abort", {"reason": "seen"})
    assert aborted.status_code == 200, aborted.text
    assert aborted.json()["result"] == "ACCEPTED"
    actions = _actions(env, mission)
    assert ("operator", "drone.mission_planned") in actions
    assert ("supervisor", "drone.mission_refused") in actions
    assert ("supervisor", "drone.mission_approved") in actions
    assert ("supervisor", "drone.mission_uploaded") in actions
    assert ("supervisor", "drone.command") in actions
    assert ("operator", "drone.abort") in actions
    approved_at = actions.index(("supervisor", "drone.mission_approved"))
    assert actions.index(("supervisor", "drone.command")) > approved_at
    # the vehicle lands and disarms: the dock is free again
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = env.call("viewer", "GET", "/drone-missions").json()
        if (
            next(m for m in status["missions"] if m["mission_id"] == mission)["state"]
            == "completed"
        ):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the vehicle did not land: {status}")


def test_a_mission_breaking_a_rule_cannot_be_approved(env: Env) -> None:
    lat, lon = PLACE
    d = 0.0005
    hospital = NoFlyZone(
        name="hospital",
        polygons=[
            [[(lon - d, lat - d), (lon + d, lat - d), (lon + d, lat + d), (lon - d, lat + d)]]
        ],
    )
    zones = env.demo.service.drones.zones
    zones.append(hospital)
    try:
        response = env.call("operator", "POST", f"/incidents/{env.incident_id}/drone-missions", {})
    finally:
        zones.remove(hospital)
    assert response.status_code == 201
    plan = response.json()
    assert not plan["sendable"] and "geofence" in plan["failed_checks"]
    body = {"mission_hash": plan["digest"], "confirmed_items": plan["declared_items"]}
    refused = env.call("supervisor", "POST", f"/drone-missions/{plan['mission_id']}/approve", body)
    assert refused.status_code == 403
    assert "geofence" in refused.json()["detail"]
    assert ("supervisor", "drone.mission_refused") in _actions(env, plan["mission_id"])
    assert ("supervisor", "drone.mission_approved") not in _actions(env, plan["mission_id"])


def test_transitions_reach_the_verification_service(env: Env) -> None:
    seen: list[tuple[str, str]] = []
    service = env.demo.service
    original = service.on_incident

    async def spy(notice: Any) -> Any:
        seen.append((notice.change, notice.incident.id))
        return await original(notice)

    service.on_incident = spy  # type: ignore[method-assign]
    try:
        response = env.call(
            "operator", "POST", f"/incidents/{env.incident_id}/transitions", {"to": "acknowledged"}
        )
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        service.on_incident = original  # type: ignore[method-assign]
    assert ("state_changed", env.incident_id) in seen


def test_audit_chain_holds_and_cli_verifies_it(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    result = env.hub_env.hub.audit_verify()
    assert result.ok, result.problems
    from ouie.cli import app

    monkeypatch.setenv("OUIE_DATABASE_URL", f"sqlite:///{env.db}")
    out = CliRunner().invoke(app, ["audit", "verify"])
    assert out.exit_code == 0, out.output
    assert "intact" in out.output


def test_without_verification_the_routes_answer_404(tmp_path: Path) -> None:
    with client_hub(tmp_path) as (hub_env, client):
        with hub_env.hub.sessions() as session, session.begin():
            user = session.execute(select(User).where(User.username == "operator")).scalar_one()
            token = auth.create_api_token(session, user, "t", utc_now())
        response = client.post(
            "/api/v1/incidents/x/camera-cue",
            json={},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 404
