"""Console and public pages through the hub's app (no browser): access, content, audit."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast
from xml.etree import ElementTree

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from ouie.config.cameras import OnvifPtzCamera, PtzLimits
from ouie.config.drones import DroneDock
from ouie.config.site import find_site
from ouie.config.verify import VerifySettings
from ouie.core.labels import EventLabel
from ouie.core.timebase import utc_now
from ouie.hub.db import AuditEntry, Incident, Shot
from ouie.web import mount_web, plots
from ouie.web.geo import Zone
from ouie.web.routes import PUBLIC_PATHS
from tests.web.hubenv import PASSWORD, HubEnv

HTML = {"accept": "text/html"}
PAGES = {
    "/console/": "viewer",
    "/console/incidents": "viewer",
    "/console/sensors": "viewer",
    "/console/sensors/saint-etienne/se-01-place-so": "viewer",
    "/console/stats": "viewer",
    "/console/audit": "auditor",
    "/console/admin": "admin",
}


def login(client: TestClient, username: str) -> str:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


#: Deployed equipment that differs from the site plan's (``cam-place-ne`` & co.): the console
#: must show these, because they are what the verify API can cue.
DEPLOYED = VerifySettings(
    cameras=[
        OnvifPtzCamera(
            id="cam-deployed",
            lat=45.44012,
            lon=4.38690,
            height_m=7.0,
            onvif_url="http://10.0.0.21",
            ptz=PtzLimits(heading_deg=45.0, fov_wide_deg=58.0),
            max_range_m=220.0,
        )
    ],
    docks=[
        DroneDock(id="dock-deployed", lat=45.4405, lon=4.3862, connection="udpout:10.0.0.50:14550")
    ],
)


@dataclass
class StandIn:
    """An attached verification service as far as the console reads it: its settings."""

    settings: VerifySettings


@contextmanager
def verification(env: HubEnv, settings: VerifySettings = DEPLOYED) -> Iterator[None]:
    env.hub.verification = cast(Any, StandIn(settings))
    try:
        yield
    finally:
        env.hub.verification = None


def wait_incident(env: HubEnv, label: str, timeout_s: float = 5.0) -> Incident:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with env.hub.sessions() as session:
            row = session.execute(select(Incident).where(Incident.label == label)).scalars().first()
            if row is not None:
                return row
        time.sleep(0.05)
    raise AssertionError(f"no {label} incident")


def test_pages_need_login_and_browsers_are_sent_to_it(web: tuple[HubEnv, TestClient]) -> None:
    _, client = web
    for path in PAGES:
        browser = client.get(path, headers=HTML, follow_redirects=False)
        assert browser.status_code == 303, path
        assert browser.headers["location"].startswith("/login?next=")
        assert client.get(path, follow_redirects=False).status_code == 401, path
    assert client.get("/console/map.json").status_code == 401
    assert client.get("/login", headers=HTML).status_code == 200
    assert client.get("/public", headers=HTML).status_code == 200


def test_each_role_sees_its_pages_and_menu(web: tuple[HubEnv, TestClient]) -> None:
    _, client = web
    ranks = {"viewer": 0, "operator": 0, "supervisor": 0, "auditor": 1, "admin": 2}
    for role in ("viewer", "operator", "supervisor", "auditor", "admin"):
        client.cookies.clear()
        login(client, role)
        for path, needed in PAGES.items():
            response = client.get(path, headers=HTML, follow_redirects=False)
            allowed = needed == "viewer" or role == needed or role == "admin"
            assert response.status_code == (200 if allowed else 403), (role, path)
        menu = client.get("/console/", headers=HTML).text
        assert ('href="/console/admin"' in menu) == (role == "admin")
        assert ('href="/console/audit"' in menu) == (ranks[role] >= 1)


def test_public_paths_are_the_only_unauthenticated_console_routes(
    web: tuple[HubEnv, TestClient],
) -> None:
    _, client = web
    for path in PUBLIC_PATHS:
        concrete = path.replace("{code}", "en")
        assert client.get(concrete, headers=HTML, follow_redirects=False).status_code in (200, 303)


def test_incident_page_shows_timeline_and_audits_the_read(web: tuple[HubEnv, TestClient]) -> None:
    env, client = web
    env.send_status()
    heard = env.sound(EventLabel.GUNSHOT, 45.44005, 4.38705)
    incident = wait_incident(env, "gunshot")
    login(client, "operator")
    page = client.get(f"/console/incidents/{incident.id}", headers=HTML)
    assert page.status_code == 200
    for sensor_id in heard:
        assert sensor_id in page.text
    assert "dBFS" in page.text  # levels (and never any audio)
    assert 'data-to="acknowledged"' in page.text
    with env.hub.sessions() as session:
        reads = (
            session.execute(
                select(AuditEntry).where(
                    AuditEntry.action == "incident.read", AuditEntry.object_id == incident.id
                )
            )
            .scalars()
            .all()
        )
    assert [r.actor for r in reads] == ["operator"]
    assert "incident.read" in page.text  # the trail on the page includes this read
    assert client.get("/console/incidents/nope", headers=HTML).status_code == 404


def test_viewer_gets_no_action_buttons(web: tuple[HubEnv, TestClient]) -> None:
    env, client = web
    env.sound(EventLabel.SCREAM, 45.44005, 4.38705)
    incident = wait_incident(env, "scream")
    login(client, "viewer")
    page = client.get(f"/console/incidents/{incident.id}", headers=HTML).text
    assert 'data-to="acknowledged"' not in page
    assert 'id="feedback-form"' not in page


def test_incident_page_lists_the_rounds_of_a_burst(web: tuple[HubEnv, TestClient]) -> None:
    env, client = web
    start = utc_now() - timedelta(seconds=20)
    for k in range(4):  # four rounds 1.5 s apart, the shooter walking east
        env.sound(
            EventLabel.GUNSHOT,
            45.44005,
            4.38705 + k * 2e-5,
            when=start + k * timedelta(seconds=1.5),
        )
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        incident = wait_incident(env, "gunshot")
        if incident.rounds == 4:
            break
        time.sleep(0.05)
    assert (incident.rounds, incident.located_rounds) == (4, 4)
    login(client, "operator")
    page = client.get(f"/console/incidents/{incident.id}", headers=HTML).text
    assert 'data-testid="rounds-table"' in page
    assert page.count('<th scope="row">#') == 4
    assert 'data-testid="rounds"' in page


def test_rounds_table_says_how_many_sensors_gave_only_their_onset(
    web: tuple[HubEnv, TestClient],
) -> None:
    env, client = web
    start = utc_now() - timedelta(seconds=20)
    for k in range(2):
        env.sound(EventLabel.GUNSHOT, 45.44005, 4.38705, when=start + k * timedelta(seconds=1.5))
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        incident = wait_incident(env, "gunshot")
        if incident.rounds == 2:
            break
        time.sleep(0.05)
    login(client, "operator")
    page = client.get(f"/console/incidents/{incident.id}", headers=HTML).text
    assert 'data-testid="rounds-table"' in page
    assert 'data-testid="onset-sensors"' not in page  # every sensor classified both rounds
    with env.hub.sessions() as session, session.begin():  # as onsets on request would leave it
        shot = session.execute(
            select(Shot).where(Shot.incident_id == incident.id, Shot.number == 2)
        ).scalar_one()
        shot.onset_sensor_count = 3
    page = client.get(f"/console/incidents/{incident.id}", headers=HTML).text
    assert page.count('data-testid="onset-sensors"') == 1
    assert "(dont 3 par l" in page or "(3 by their onset only)" in page


def test_two_sensor_incident_is_shown_as_an_approximate_area(
    web: tuple[HubEnv, TestClient],
) -> None:
    env, client = web
    heard = env.sound(EventLabel.GLASS_BREAKING, 45.44005, 4.38705, hearing_m=45.0)
    assert 1 <= len(heard) <= 2
    incident = wait_incident(env, "glass_breaking")
    assert incident.method == "area"
    login(client, "operator")
    page = client.get(f"/console/incidents/{incident.id}", headers=HTML).text
    assert 'data-approximate="1"' in page
    assert "zone approximative" in page or "approximate area" in page


def test_incident_filters(web: tuple[HubEnv, TestClient]) -> None:
    env, client = web
    env.sound(EventLabel.GUNSHOT, 45.44005, 4.38705)
    env.sound(EventLabel.SIREN, 45.4408, 4.3870)
    wait_incident(env, "gunshot")
    wait_incident(env, "siren")
    login(client, "viewer")
    rows = client.get("/console/incidents?label=siren", headers=HTML).text
    assert rows.count("data-incident=") == 1
    assert (
        client.get("/console/incidents?state=closed", headers=HTML).text.count("data-incident=")
        == 0
    )
    assert (
        client.get("/console/incidents?zone=saint-etienne", headers=HTML).text.count(
            "data-incident="
        )
        == 2
    )
    old = client.get("/console/incidents?since=2000-01-01&until=2000-01-02", headers=HTML)
    assert old.text.count("data-incident=") == 0


def test_map_data_has_plan_sensors_and_open_incidents(web: tuple[HubEnv, TestClient]) -> None:
    env, client = web
    env.sound(EventLabel.GUNSHOT, 45.44005, 4.38705)
    wait_incident(env, "gunshot")
    login(client, "viewer")
    data = client.get("/console/map.json").json()
    kinds = {f["properties"]["kind"] for f in data["plan"]["features"]["features"]}
    assert {"street", "building", "square"} <= kinds
    assert len(data["sensors"]) == 16
    # no verification attached: no cameras or docks, whatever the site plan lists
    assert data["plan"]["cameras"] == [] and data["plan"]["docks"] == []
    (incident,) = data["incidents"]
    assert incident["label"] == "gunshot" and incident["ellipse_major_m"] is not None


def test_public_page_shows_sensors_never_incident_positions(web: tuple[HubEnv, TestClient]) -> None:
    env, client = web
    env.sound(EventLabel.GUNSHOT, 45.44005, 4.38705)
    incident = wait_incident(env, "gunshot")
    page = client.get("/public", headers=HTML).text
    data = client.get("/public/map.json").json()
    assert len(data["sensors"]) == 16
    assert "incidents" not in data and "cameras" not in data["plan"]
    assert f"{incident.lat:.4f}" not in page and incident.id not in page
    assert f"{incident.lat:.4f}" not in str(data)
    assert re.search(r'data-testid="public-counts"', page)
    assert "30" in page  # retention days
    # this week's gunshot is not published yet: counts are whole days at least a day old,
    # and a count below the minimum is shown as "< 5" (issue 20: no live oracle)
    assert '<td class="num">1</td>' not in page and "&lt;&nbsp;5" in page


def test_language_switch_and_french_default(web: tuple[HubEnv, TestClient]) -> None:
    _, client = web
    french = client.get("/login", headers={**HTML, "accept-language": "fr-FR"}).text
    assert "Identifiant" in french
    english = client.get("/login", headers={**HTML, "accept-language": "en-GB"}).text
    assert "User name" in english
    switched = client.get("/lang/fr?next=/login", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/login"
    assert "Identifiant" in client.get("/login", headers={**HTML, "accept-language": "en"}).text
    evil = client.get("/lang/en?next=//evil.example/x", follow_redirects=False)
    assert evil.headers["location"] == "/console/"


def test_plots_are_well_formed_svg() -> None:
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    series = {"gunshot": [1, 0, 3], "siren": [0, 2, 1]}
    svgs = [
        plots.stacked_bars(days, series, {"gunshot": "Gunshot", "siren": "Siren <&>"}, "t"),
        plots.precision_bars([("a", 0.5, 4), ("b", None, 0)], "p"),
        plots.response_histogram({"ack": [5.0, 70.0, 4000.0], "end": []}, "r"),
        plots.sparkline([0.1, 0.9, 0.5], title="s"),
        plots.sparkline([], title="empty"),
    ]
    for svg in svgs:
        root = ElementTree.fromstring(str(svg))
        assert root.tag.endswith("svg")
    assert "Siren &lt;&amp;&gt;" in str(svgs[0])


def test_zone_edge_counts_as_inside_like_ouie_check() -> None:
    zone = Zone("z", ((0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)))
    assert zone.contains(0.5, 0.5) and zone.contains(0.0, 0.5) and zone.contains(1.0, 1.0)
    assert not zone.contains(1.5, 0.5)
    holed = Zone("h", ((0.0, 0.0), (0.0, 4.0), (4.0, 4.0), (4.0, 0.0)), (((1, 1), (1, 2), (2, 2)),))
    assert not holed.contains(1.2, 1.5) and holed.contains(1.0, 1.5)


def test_console_equipment_is_the_verify_configs_not_the_site_plans(
    web: tuple[HubEnv, TestClient],
) -> None:
    env, client = web
    env.sound(EventLabel.GUNSHOT, 45.44005, 4.38705)
    incident = wait_incident(env, "gunshot")
    login(client, "admin")
    plan_cameras = {c.id for c in find_site("saint-etienne").spec.cameras}
    assert plan_cameras and "cam-deployed" not in plan_cameras
    with verification(env):
        plan = client.get("/console/map.json").json()["plan"]
        page = client.get(f"/console/incidents/{incident.id}", headers=HTML).text
        admin = client.get("/console/admin", headers=HTML).text
    assert plan["cameras"] == [
        {
            "id": "cam-deployed",
            "lat": 45.44012,
            "lon": 4.38690,
            "heading_deg": 45.0,
            "fov_deg": 58.0,
            "range_m": 220.0,
        }
    ]
    assert plan["docks"] == [{"id": "dock-deployed", "lat": 45.4405, "lon": 4.3862}]
    assert [c["id"] for c in plan["cameras"]] == [c.id for c in DEPLOYED.cameras]
    assert "cam-deployed" in page and "cam-deployed" in admin and "dock-deployed" in admin
    for camera_id in plan_cameras:
        assert camera_id not in page and camera_id not in admin


def test_verification_buttons_follow_the_hubs_routes(web: tuple[HubEnv, TestClient]) -> None:
    env, client = web
    env.sound(EventLabel.GUNSHOT, 45.44005, 4.38705)
    incident = wait_incident(env, "gunshot")
    login(client, "operator")
    page = client.get(f"/console/incidents/{incident.id}", headers=HTML).text
    # the verification routes exist but no service is attached: no cameras, no buttons
    assert "cam-" not in page and "data-verify=" not in page

    with verification(env):
        page = client.get(f"/console/incidents/{incident.id}", headers=HTML).text
    assert "cam-deployed" in page
    assert f'data-verify="/api/v1/incidents/{incident.id}/camera-cue"' in page
    assert 'data-testid="drone-plan"' in page


def test_mounting_twice_is_harmless(web: tuple[HubEnv, TestClient]) -> None:
    env, client = web
    app = client.app
    assert isinstance(app, FastAPI)
    before = len(app.routes)
    assert mount_web(app, env.hub)
    assert len(app.routes) == before


def test_thresholds_page_shows_the_calibrated_defaults_of_the_sensor_model() -> None:
    from ouie.node.tuned import tuned_for
    from ouie.web.data import calibrated_defaults

    model_id = "ouie-compact@00000000"
    shipped = tuned_for(model_id)
    assert shipped is not None
    defaults, basis = calibrated_defaults(model_id)
    assert defaults == {label.value: t for label, t in shipped.thresholds.items()}
    assert basis == shipped.objective
    assert calibrated_defaults(None) == ({}, None)
    assert calibrated_defaults("unknown-family@1") == ({}, None)
