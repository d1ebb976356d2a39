"""The console and the API are one system: same incident serialisation, same authentication."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import select

from ouie.core.labels import EventLabel
from ouie.core.timebase import utc_now
from ouie.hub import incidents
from ouie.hub.db import Incident, UserSession
from ouie.web import data
from tests.web.hubenv import PASSWORD, HubEnv

HTML = {"accept": "text/html"}


def _login(client: TestClient, username: str) -> str:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def _incident(env: HubEnv) -> Incident:
    env.sound(EventLabel.GUNSHOT, 45.44005, 4.38705)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        with env.hub.sessions() as session:
            row = session.execute(select(Incident)).scalars().first()
            if row is not None:
                return row
        time.sleep(0.05)
    raise AssertionError("no incident")


def test_console_and_api_serialise_an_incident_alike(web: tuple[HubEnv, TestClient]) -> None:
    env, client = web
    incident = _incident(env)
    with env.hub.sessions() as session, session.begin():
        incidents.transition(session, incident.id, "acknowledged", "operator", "seen", utc_now())
        incidents.add_feedback(session, incident.id, "operator", "unsure", "car", "", utc_now())
    _login(client, "operator")
    api = client.get("/api/v1/incidents").json()["incidents"]
    console = client.get("/console/map.json").json()["incidents"]
    assert len(api) == len(console) == 1
    zone = console[0].pop("zone")
    assert isinstance(zone, str) and zone
    assert console[0] == api[0]

    detail = client.get(f"/api/v1/incidents/{incident.id}").json()
    plan = client.app.state.web.plan  # type: ignore[attr-defined]
    with env.hub.sessions() as session:
        shown = data.incident_detail(session, incident.id, plan)
    assert shown is not None
    page = shown.model_dump(mode="json")
    assert page["transitions"] == detail["transitions"]
    assert page["feedback"] == detail["feedback"]
    assert [t["from"] for t in page["transitions"]] == [None, "new"]


def test_console_pages_follow_the_hubs_session_rules(web: tuple[HubEnv, TestClient]) -> None:
    env, client = web
    _login(client, "viewer")
    assert client.get("/console/incidents", headers=HTML).status_code == 200
    with env.hub.sessions() as session, session.begin():  # the hub ends the session
        for row in session.execute(select(UserSession)).scalars():
            row.expires_at = utc_now()
    response = client.get("/console/incidents", headers=HTML, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert client.get("/api/v1/auth/me").status_code == 401


def test_console_accepts_the_apis_bearer_tokens(web: tuple[HubEnv, TestClient]) -> None:
    _, client = web
    token = client.post(
        "/api/v1/auth/tokens",
        json={"name": "wall screen"},
        headers={"X-CSRF-Token": _login(client, "viewer")},
    ).json()["token"]
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {token}", **HTML}
    assert client.get("/console/incidents", headers=bearer).status_code == 200
    assert client.get("/console/admin", headers=bearer).status_code == 403
