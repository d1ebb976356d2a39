"""The HTTP API: access rules route by route, login, CSRF, incident workflow, audit, ingest."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from ouie.core.messages import topic_for
from ouie.core.timebase import utc_now
from ouie.hub import auth
from ouie.hub.api import ACCESS_KEY, create_app
from ouie.hub.auth import PERMISSIONS, Perm, Role
from ouie.hub.db import User
from ouie.hub.ingest import Envelope
from ouie.hub.service import Hub
from ouie.transport.base import encode
from tests.hub.helpers import SITE, events_for_source, register_sensors, sensor_grid, settings_for

DOC_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
PASSWORD = "correct horse battery"


@pytest.fixture
def env(sqlite_url: str) -> Iterator[dict[str, Any]]:
    hub = Hub(settings_for(sqlite_url))
    app = create_app(hub)
    with TestClient(app) as client:
        tokens: dict[str, str] = {}
        with hub.sessions() as session, session.begin():
            for role in Role:
                user = auth.create_user(session, role.value, PASSWORD, role.value, utc_now())
                tokens[role.value] = auth.create_api_token(session, user, "test", utc_now())
        layout = sensor_grid(4)
        sensor_tokens = register_sensors(hub, layout)
        yield {
            "hub": hub,
            "app": app,
            "client": client,
            "tokens": tokens,
            "layout": layout,
            "sensor_tokens": sensor_tokens,
        }
    hub.close()


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


HUB_PREFIXES = ("/api/", "/metrics", "/health")


def _routes(app: Any) -> list[tuple[str, str, str]]:
    """The hub's own routes (the console mounted by ``ouie.web`` tests its pages itself)."""
    out = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.path.startswith(HUB_PREFIXES):
            continue
        access = (route.openapi_extra or {}).get(ACCESS_KEY)
        for method in route.methods:
            out.append((method, route.path, access))
    return out


def test_every_route_declares_access(env: dict[str, Any]) -> None:
    routes = _routes(env["app"])
    assert len(routes) > 25
    missing = [(m, p) for m, p, a in routes if a is None and p not in DOC_ROUTES]
    assert missing == []
    public = {p for _, p, a in routes if a == "public"}
    assert public == {
        "/api/v1/health",
        "/api/v1/public/summary",
        "/api/v1/public/audit-anchor",  # the signed audit head, for anyone to record
        "/api/v1/auth/login",
        "/health",
    }


def test_unauthenticated_requests_get_401(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    checked = 0
    for method, path, access in _routes(env["app"]):
        if access in (None, "public"):
            continue
        response = client.request(method, _concrete(path), json={})
        assert response.status_code == 401, (method, path, response.status_code)
        bogus = client.request(
            method, _concrete(path), json={}, headers={"Authorization": "Bearer nope"}
        )
        assert bogus.status_code == 401, (method, path)
        checked += 1
    assert checked > 20


def test_wrong_role_gets_403_and_right_role_passes_the_guard(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    for method, path, access in _routes(env["app"]):
        if access in (None, "public", "authenticated", "sensor"):
            continue
        perm = Perm(access)
        for role in Role:
            headers = {"Authorization": f"Bearer {env['tokens'][role.value]}"}
            allowed = perm in PERMISSIONS[role]
            if allowed and path.endswith("/stream"):
                continue  # an open event stream; covered in its own test
            if allowed and path.endswith("/admin/retention"):
                continue
            response = client.request(method, _concrete(path), json={}, headers=headers)
            if allowed:
                assert response.status_code not in (401, 403), (role, method, path)
            else:
                assert response.status_code == 403, (role, method, path, response.status_code)


def test_sensor_tokens_only_open_ingest(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    token = env["sensor_tokens"]["s1"]
    assert (
        client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    user_token = env["tokens"]["admin"]
    assert (
        client.post(
            "/api/v1/ingest", json={}, headers={"Authorization": f"Bearer {user_token}"}
        ).status_code
        == 401
    )


def _login(client: TestClient, username: str) -> str:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def test_session_cookie_needs_csrf_for_changes(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    csrf = _login(client, "admin")
    assert client.get("/api/v1/auth/me").json()["role"] == "admin"
    body = {"username": "newbie", "password": "another password", "role": "viewer"}
    assert client.post("/api/v1/users", json=body).status_code == 403
    assert (
        client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": "wrong"}).status_code
        == 403
    )
    assert (
        client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
    )
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/api/v1/auth/me").status_code == 401


def test_login_is_rate_limited(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    codes = [
        client.post(
            "/api/v1/auth/login", json={"username": "viewer", "password": "wrong!"}
        ).status_code
        for _ in range(7)
    ]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    # even the right password is refused while blocked
    right = client.post("/api/v1/auth/login", json={"username": "viewer", "password": PASSWORD})
    assert right.status_code == 429


def test_incident_workflow_feedback_stats_and_audit(env: dict[str, Any]) -> None:
    hub: Hub = env["hub"]
    client: TestClient = env["client"]
    events = events_for_source(env["layout"], 10.0, 3.0, utc_now() - timedelta(seconds=1))
    hub.processor.process(
        [Envelope("bus", topic_for(SITE, m.sensor_id, "events"), encode(m)) for m in events]
    )
    op = {"Authorization": f"Bearer {env['tokens']['operator']}"}
    listed = client.get("/api/v1/incidents", headers=op).json()["incidents"]
    assert len(listed) == 1 and listed[0]["method"] == "tdoa"
    incident_id = listed[0]["id"]
    for to in ("acknowledged", "verifying", "confirmed", "closed"):
        response = client.post(
            f"/api/v1/incidents/{incident_id}/transitions",
            json={"to": to, "comment": f"c-{to}"},
            headers=op,
        )
        assert response.status_code == 200, response.text
    again = client.post(
        f"/api/v1/incidents/{incident_id}/transitions", json={"to": "acknowledged"}, headers=op
    )
    assert again.status_code == 409
    fb = client.post(
        f"/api/v1/incidents/{incident_id}/feedback",
        json={"verdict": "true_alarm", "cause": "shot"},
        headers=op,
    )
    assert fb.status_code == 201
    detail = client.get(f"/api/v1/incidents/{incident_id}", headers=op).json()
    assert [t["to"] for t in detail["transitions"]] == [
        "new",
        "acknowledged",
        "verifying",
        "confirmed",
        "closed",
    ]
    assert len(detail["detections"]) == 4
    actions = [a["action"] for a in detail["audit"]]
    assert actions[0] == "incident.created" and actions.count("incident.transition") == 4
    assert "incident.read" in actions and "incident.list" not in actions
    stats = client.get("/api/v1/stats/precision", headers=op).json()
    assert stats["per_label"]["gunshot"]["precision"] == 1.0
    assert stats["per_sensor"][f"{SITE}/s1"]["true_alarm"] == 1
    daily = client.get("/api/v1/stats/incidents", headers=op).json()
    assert daily["by_state"] == {"closed": 1}
    auditor = {"Authorization": f"Bearer {env['tokens']['auditor']}"}
    assert client.get("/api/v1/audit/verify", headers=auditor).json()["ok"] is True
    metrics = client.get("/metrics", headers=auditor).text
    assert 'ouie_hub_incidents{state="closed"} 1.0' in metrics


def test_thresholds_update_is_audited(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    sup = {"Authorization": f"Bearer {env['tokens']['supervisor']}"}
    response = client.put(
        f"/api/v1/sensors/{SITE}/s2/thresholds", json={"thresholds": {"gunshot": 0.7}}, headers=sup
    )
    assert response.status_code == 200, response.text
    assert client.get(f"/api/v1/sensors/{SITE}/s2", headers=sup).json()["thresholds"] == {
        "gunshot": 0.7
    }
    bad = client.put(
        f"/api/v1/sensors/{SITE}/s2/thresholds", json={"thresholds": {"speech": 0.7}}, headers=sup
    )
    assert bad.status_code == 422
    auditor = {"Authorization": f"Bearer {env['tokens']['auditor']}"}
    entries = client.get("/api/v1/audit", headers=auditor).json()["entries"]
    assert any(e["action"] == "sensor.thresholds" and e["actor"] == "supervisor" for e in entries)


def test_http_ingest_with_sensor_token(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    events = events_for_source(env["layout"], 0.0, 0.0, utc_now())
    for message in events:
        headers = {"Authorization": f"Bearer {env['sensor_tokens'][message.sensor_id]}"}
        response = client.post(
            "/api/v1/ingest",
            content=encode(message),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 202, response.text
    dup_headers = {
        "Authorization": f"Bearer {env['sensor_tokens']['s1']}",
        "Content-Type": "application/json",
    }
    assert client.post("/api/v1/ingest", content=encode(events[0]), headers=dup_headers).json() == {
        "outcome": "duplicate"
    }
    # s1's token cannot speak for s2
    spoof = client.post("/api/v1/ingest", content=encode(events[1]), headers=dup_headers)
    assert spoof.status_code == 422 and spoof.json()["reason"] in {"wrong_sensor", "topic_mismatch"}
    viewer = {"Authorization": f"Bearer {env['tokens']['viewer']}"}
    incidents = client.get("/api/v1/incidents", headers=viewer).json()["incidents"]
    assert len(incidents) == 1 and incidents[0]["sensor_count"] == 4


def test_retention_deletes_old_rows_and_audits_counts(env: dict[str, Any]) -> None:
    hub: Hub = env["hub"]
    old = utc_now() - timedelta(days=3)
    events = events_for_source(env["layout"], 0.0, 0.0, old)
    envelopes = [Envelope("bus", topic_for(SITE, m.sensor_id, "events"), encode(m)) for m in events]
    hub.processor.process(envelopes)
    report = hub.retention_once(now=utc_now() + timedelta(days=28))
    assert report[SITE] == {"days": 30, "detections": 4, "impulses": 0, "incidents": 1}
    admin = {"Authorization": f"Bearer {env['tokens']['admin']}"}
    client: TestClient = env["client"]
    assert client.get("/api/v1/incidents", headers=admin).json()["incidents"] == []
    entries = client.get("/api/v1/audit", headers=admin).json()["entries"]
    # the hub's own start-up run may be audited too (with nothing to delete); this run's
    # entry must carry its counts
    runs = [e["detail"]["sites"].get(SITE, {}) for e in entries if e["action"] == "retention.run"]
    assert {"days": 30, "detections": 4, "incidents": 1}.items() <= max(
        runs, key=lambda site: site.get("detections", 0)
    ).items()


def test_users_admin(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    admin = {"Authorization": f"Bearer {env['tokens']['admin']}"}
    response = client.patch("/api/v1/users/viewer", json={"active": False}, headers=admin)
    assert response.status_code == 200 and response.json()["active"] is False
    viewer = {"Authorization": f"Bearer {env['tokens']['viewer']}"}
    assert client.get("/api/v1/incidents", headers=viewer).status_code == 401
    hub: Hub = env["hub"]
    with hub.sessions() as session:
        assert session.query(User).count() == len(Role)
