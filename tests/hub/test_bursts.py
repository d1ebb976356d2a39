"""Shots inside incidents, through the real hub: ingest → fusion → database → API.

Detections are synthetic with exact arrival times (no audio), on the 8-post test layout,
so every test knows where each round was fired and can assert per-shot errors.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ouie.core.labels import EventLabel
from ouie.core.messages import EventMessage, topic_for
from ouie.core.timebase import utc_now
from ouie.hub import auth
from ouie.hub.api import create_app
from ouie.hub.db import AuditEntry, Detection, Incident, IncidentTransition
from ouie.hub.ingest import Envelope
from ouie.hub.service import Hub
from ouie.transport.base import encode
from tests.hub.helpers import (
    SITE,
    enu_of,
    events_for_source,
    register_sensors,
    sensor_grid,
    settings_for,
)

LAYOUT = sensor_grid(8)


def envelopes(messages: list[EventMessage]) -> list[Envelope]:
    return [Envelope("bus", topic_for(SITE, m.sensor_id, "events"), encode(m)) for m in messages]


def rounds(
    t0: datetime, count: int, gap_s: float, start: tuple[float, float] = (-20.0, 10.0)
) -> list[tuple[float, float, datetime]]:
    """A shooter walking north-east 1.5 m/s, firing every ``gap_s``."""
    step = 1.5 * gap_s / math.sqrt(2.0)
    return [
        (start[0] + k * step, start[1] + k * step, t0 + timedelta(seconds=k * gap_s))
        for k in range(count)
    ]


def burst_messages(
    shots: list[tuple[float, float, datetime]], jitter_s: float = 0.0005, seed: int = 0
) -> list[EventMessage]:
    rng = np.random.default_rng(seed)
    out: list[EventMessage] = []
    for east, north, when in shots:
        out += events_for_source(LAYOUT, east, north, when, jitter_s=jitter_s, rng=rng)
    # a node that tells rounds 0.25 s apart apart ends each event before the next round
    return [m.model_copy(update={"offset": m.onset + timedelta(seconds=0.1)}) for m in out]


@pytest.fixture
def hub8(hub: Hub) -> Hub:
    register_sensors(hub, LAYOUT)
    return hub


def shot_errors(hub: Hub, shots: list[tuple[float, float, datetime]]) -> list[float]:
    with hub.sessions() as session:
        incident = session.execute(select(Incident)).scalar_one()
        errors = []
        for row, (east, north, _) in zip(incident.shots, shots, strict=True):
            assert row.method == "tdoa"
            e, n = enu_of(row.lat, row.lon)
            errors.append(math.hypot(e - east, n - north))
        return errors


def partition(hub: Hub) -> list[list[list[str]]]:
    with hub.sessions() as session:
        rows = session.execute(
            select(Detection.incident_id, Detection.shot_number, Detection.message_id)
        ).all()
    groups: dict[str | None, dict[int | None, list[str]]] = {}
    for incident_id, number, message_id in rows:
        groups.setdefault(incident_id, {}).setdefault(number, []).append(message_id)
    return sorted(sorted(sorted(ids) for ids in shots.values()) for shots in groups.values())


@pytest.mark.parametrize(("count", "gap_s"), [(3, 0.25), (6, 3.5), (10, 0.6)])
def test_each_round_is_located_on_its_own(hub8: Hub, count: int, gap_s: float) -> None:
    shots = rounds(utc_now() - timedelta(minutes=2), count, gap_s)
    hub8.processor.process(envelopes(burst_messages(shots)))
    with hub8.sessions() as session:
        incident = session.execute(select(Incident)).scalar_one()
        assert (incident.rounds, incident.located_rounds) == (count, count)
        assert incident.method == "tdoa" and incident.best_shot is not None
        assert [s.number for s in incident.shots] == list(range(1, count + 1))
        assert all(s.sensor_count == 8 for s in incident.shots)
        numbers = {d.shot_number for d in incident.detections}
        assert numbers == set(range(1, count + 1))
    errors = shot_errors(hub8, shots)
    assert max(errors) < 1.0, errors


def test_arrival_order_and_batching_do_not_change_the_association(tmp_path: object) -> None:
    messages = burst_messages(rounds(utc_now() - timedelta(minutes=2), 5, 0.4), jitter_s=0.002)
    results = []
    for seed in range(4):
        url = f"sqlite:///{tmp_path}/h{seed}.sqlite3"
        hub = Hub(settings_for(url))
        hub.prepare()
        register_sensors(hub, LAYOUT)
        order = list(messages)
        random.Random(seed).shuffle(order)
        if seed == 0:
            order = sorted(messages, key=lambda m: m.onset)
        sizes = random.Random(seed + 100)
        while order:  # one at a time, in twos, in fives …
            take = 1 if seed == 1 else sizes.randint(1, 9)
            hub.processor.process(envelopes(order[:take]))
            order = order[take:]
        results.append(partition(hub))
        with hub.sessions() as session:
            open_incidents = session.execute(
                select(Incident).where(Incident.state != "closed")
            ).scalars()
            assert [i.rounds for i in open_incidents] == [5]
        hub.close()
    assert all(result == results[0] for result in results[1:])


def test_a_late_middle_round_merges_two_incidents(hub8: Hub) -> None:
    t0 = utc_now() - timedelta(minutes=2)
    shots = rounds(t0, 3, 8.0)  # 0, 8, 16 s: 16 s is beyond the 10 s burst window
    first, middle, last = (burst_messages([shot], seed=i) for i, shot in enumerate(shots))
    hub8.processor.process(envelopes(first + last))
    with hub8.sessions() as session:
        assert session.execute(select(Incident)).scalars().all().__len__() == 2
    result = hub8.processor.process(envelopes(middle))
    assert sorted(change.kind for change in result.changes) == ["closed", "updated"]
    with hub8.sessions() as session:
        incidents = session.execute(select(Incident).order_by(Incident.first_onset)).scalars()
        kept, merged = list(incidents)
        assert (kept.rounds, kept.state, merged.state) == (3, "new", "closed")
        transition = session.execute(
            select(IncidentTransition).where(IncidentTransition.incident_id == merged.id)
        ).scalars()
        assert [t.comment for t in transition][-1] == f"merged into {kept.id}"
        actions = set(session.execute(select(AuditEntry.action)).scalars())
        assert "incident.merged" in actions


def test_labels_from_all_sensors_decide_the_incident(hub8: Hub) -> None:
    t0 = utc_now() - timedelta(minutes=2)
    messages = events_for_source(LAYOUT, 10.0, -5.0, t0)
    near = sorted(messages, key=lambda m: m.onset)[:3]
    mixed = [
        m.model_copy(update={"label": EventLabel.GLASS_BREAKING, "level_dbfs": -0.2})
        if m in near
        else m
        for m in messages
    ]
    hub8.processor.process(envelopes(mixed))
    with hub8.sessions() as session:
        incident = session.execute(select(Incident)).scalar_one()
        # three clipped near sensors say glass, five far ones gunshot: one gunshot, located
        assert (incident.label, incident.method, incident.sensor_count) == ("gunshot", "tdoa", 8)
        assert incident.shots[0].label == "gunshot"
        east, north = enu_of(incident.lat, incident.lon)
        assert math.hypot(east - 10.0, north + 5.0) < 0.5


def test_two_sensors_never_give_a_point(hub8: Hub) -> None:
    t0 = utc_now() - timedelta(minutes=2)
    messages = sorted(events_for_source(LAYOUT, -60.0, 5.0, t0), key=lambda m: m.onset)[:2]
    hub8.processor.process(envelopes(messages))
    with hub8.sessions() as session:
        incident = session.execute(select(Incident)).scalar_one()
        assert incident.approximate and incident.method == "area"
        assert incident.located_rounds == 0 and incident.shots[0].approximate
        east, north = enu_of(incident.lat, incident.lon)
        assert math.hypot(east + 60.0, north - 5.0) <= incident.radius_m


@pytest.fixture
def api(hub8: Hub) -> Iterator[tuple[Hub, TestClient, str]]:
    app = create_app(hub8, manage_hub=False)
    with hub8.sessions() as session, session.begin():
        user = auth.create_user(session, "viewer", "correct horse battery", "viewer", utc_now())
        token = auth.create_api_token(session, user, "test", utc_now())
    with TestClient(app) as client:
        yield hub8, client, token


def test_api_and_live_stream_carry_the_shots(api: tuple[Hub, TestClient, str]) -> None:
    hub, client, token = api
    live = hub.live.subscribe()
    shots = rounds(utc_now() - timedelta(minutes=2), 4, 1.0)
    result = hub.processor.process(envelopes(burst_messages(shots)))
    hub._on_changes(result.changes)
    headers = {"Authorization": f"Bearer {token}"}
    listed = client.get("/api/v1/incidents", headers=headers).json()["incidents"]
    assert [(i["rounds"], i["located_rounds"], i["approximate"]) for i in listed] == [(4, 4, False)]
    detail = client.get(f"/api/v1/incidents/{listed[0]['id']}", headers=headers).json()
    assert [s["number"] for s in detail["shots"]] == [1, 2, 3, 4]
    assert all(s["method"] == "tdoa" and not s["approximate"] for s in detail["shots"])
    assert detail["track_m"] == pytest.approx(1.5 * 3.0, abs=1.0)
    assert {d["shot_number"] for d in detail["detections"]} == {1, 2, 3, 4}
    message = live.get_nowait()
    assert message["type"] == "incident.created"
    assert len(message["incident"]["shots"]) == 4
