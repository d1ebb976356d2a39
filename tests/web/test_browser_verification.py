"""Issue 8 in a real browser: an operator cues a camera for a gunshot from the incident page,
a supervisor approves a drone flight to it, and the drone appears on the map.

The hub runs as in ``test_browser.py`` (uvicorn on loopback, SQLite); verification is the
demo's (``ouie.sim.verify_demo.start_demo_verification``): loopback ONVIF PTZ devices and a
MAVLink vehicle at the Saint-Étienne site, started on the hub's own event loop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ouie.core.labels import EventLabel
from ouie.hub.db import AuditEntry, Incident
from ouie.sim.verify_demo import DemoVerification, start_demo_verification
from tests._services import CHROMIUM
from tests.web.hubenv import HubEnv, log_in, running_hub

pytestmark = [pytest.mark.slow, pytest.mark.needs("chromium", "playwright", "pymavlink", "onvif")]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "web"
SCREENSHOT = ROOT / "docs" / "screenshots" / "verification.png"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run"]
VIEWPORT = {"width": 1366, "height": 768}
PLACE = (45.44005, 4.38705)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubEnv, DemoVerification]]:
    with running_hub(tmp_path_factory.mktemp("hub")) as hub_env:
        hub_env.send_status()
        loop = hub_env.hub.loop
        assert loop is not None
        demo = asyncio.run_coroutine_threadsafe(
            start_demo_verification(hub_env.hub, time_scale=2.0), loop
        ).result(30)
        try:
            yield hub_env, demo
        finally:
            asyncio.run_coroutine_threadsafe(demo.close(), loop).result(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield instance
        instance.close()


def _page(browser: Any, base_url: str, errors: list[str]) -> Any:
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", base_url=base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def _incident(hub_env: HubEnv) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with hub_env.hub.sessions() as session:
            row = (
                session.execute(select(Incident).where(Incident.label == "gunshot"))
                .scalars()
                .first()
            )
            if row is not None:
                return row.id
        time.sleep(0.05)
    raise AssertionError("no gunshot incident")


def _actions(hub_env: HubEnv, object_id: str) -> list[tuple[str, str]]:
    with hub_env.hub.sessions() as session:
        rows = session.execute(
            select(AuditEntry.actor, AuditEntry.action)
            .where(AuditEntry.object_id == object_id)
            .order_by(AuditEntry.seq)
        ).all()
    return [(a, b) for a, b in rows]


def test_operator_cues_camera_supervisor_approves_drone(
    env: tuple[HubEnv, DemoVerification], browser: Any
) -> None:
    hub_env, demo = env
    errors: list[str] = []
    hub_env.sound(EventLabel.GUNSHOT, *PLACE)
    incident_id = _incident(hub_env)
    path = f"/console/incidents/{incident_id}"

    # the operator cues the nearest camera: a real ONVIF AbsoluteMove, URIs shown
    operator = _page(browser, hub_env.base_url, errors)
    log_in(operator, "operator", path)
    operator.click("[data-testid='cue-cam-place-ne']")
    operator.wait_for_selector("[data-testid='stream-uri']")
    assert operator.locator("[data-testid='snapshot-link']").get_attribute("href", timeout=1000)
    assert demo.devices["cam-place-ne"].calls_of("AbsoluteMove")
    assert operator.locator("[data-testid='drone-approve']").count() == 0
    assert ("operator", "camera.cued") in _actions(hub_env, incident_id)

    # the supervisor plans the flight, confirms the declared items and approves it
    supervisor = _page(browser, hub_env.base_url, errors)
    log_in(supervisor, "supervisor", path)
    supervisor.click("[data-testid='drone-plan']")
    supervisor.wait_for_selector("[data-testid='drone-approve']")
    for box in supervisor.locator("#drone-checklist input[name=confirm]").all():
        box.check()
    supervisor.click("[data-testid='drone-approve']")
    supervisor.wait_for_selector("#incident-map .drone-marker")
    from playwright.sync_api import expect

    # a locator check: the console's CSP refuses wait_for_function's string eval (issue 18)
    expect(supervisor.locator("[data-testid='drone-run-state']")).to_have_text("in_flight")
    time.sleep(2.0)  # let it climb and head out, for the picture
    supervisor.locator("#verify-title").scroll_into_view_if_needed()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    supervisor.screenshot(path=str(ARTIFACTS / "verification.png"), full_page=True)
    if os.environ.get("OUIE_UPDATE_SCREENSHOTS") == "1":  # as in test_browser.py
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / "verification.png", SCREENSHOT)

    # the live map shows the drone in flight too
    supervisor.goto("/console/")
    supervisor.wait_for_selector("#map[data-ready='1']")
    supervisor.wait_for_selector("#map .drone-marker")

    missions = list(demo.service.drones.runs)
    assert len(missions) == 1
    actions = _actions(hub_env, missions[0])
    assert ("supervisor", "drone.mission_planned") in actions
    assert ("supervisor", "drone.mission_approved") in actions
    assert ("supervisor", "drone.mission_uploaded") in actions
    assert hub_env.hub.audit_verify().ok
    assert errors == [], errors
