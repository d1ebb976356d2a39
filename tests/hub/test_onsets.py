"""Onsets on request: reported impulse onsets complete the shots too few sensors classified.

Association level, on the bundled site's 16 lamp posts (as ``test_association``): a round
that two sensors classify, with the arrivals the other sensors would report, must become a
located shot; onsets alone must never found one; an onset that is another sound must not
be taken. Hub level: the hub asks the right sensors for the right windows, stores their
answers, re-locates the shot and audits the request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from datetime import timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ouie.core.messages import ImpulseOnsetMessage, OnsetRequestMessage, topic_for
from ouie.core.timebase import utc_now
from ouie.hub.association import Heard, associate
from ouie.hub.db import AuditEntry, ImpulseOnsetRow, Incident, Shot
from ouie.hub.ingest import Envelope
from ouie.hub.schemas import ShotView
from ouie.hub.service import Hub
from ouie.transport.base import encode
from ouie.transport.inproc import InProcBus
from tests.hub.helpers import (
    SITE,
    enu_of,
    events_for_source,
    register_sensors,
    sensor_grid,
    settings_for,
)
from tests.hub.test_association import PARAMS, SENSORS, C

SOURCE = (12.0, -8.0)
T0 = 5_000.0


def _arrival(sensor: int, source: tuple[float, float] = SOURCE, t0: float = T0) -> float:
    return t0 + math.dist((source[0], source[1], 1.0), tuple(SENSORS[sensor])) / C


def _nearest(k: int, source: tuple[float, float] = SOURCE) -> list[int]:
    return sorted(
        range(len(SENSORS)),
        key=lambda i: math.dist((source[0], source[1], 1.0), tuple(SENSORS[i])),
    )[:k]


def _detection(sensor: int, onset: float, label: str = "gunshot") -> Heard:
    s = SENSORS[sensor]
    return Heard(
        key=f"d{sensor:02d}",
        sensor=sensor,
        onset=onset,
        label=label,
        weight=0.9,
        strength=-20.0,
        position=(float(s[0]), float(s[1]), float(s[2])),
    )


def _onset(sensor: int, onset: float, tag: str = "") -> Heard:
    """What a sensor reported on request: a time and a prominence, no label, no vote."""
    return dataclasses.replace(
        _detection(sensor, onset, label=""),
        key=f"onset:{sensor:02d}{tag}",
        weight=0.0,
        strength=30.0,
        onset_only=True,
    )


def _located(bursts: list, source: tuple[float, float] = SOURCE) -> list[float]:  # type: ignore[type-arg]
    errors = []
    for b in bursts:
        for shot in b.shots:
            if shot.located:
                errors.append(math.hypot(shot.fix.east - source[0], shot.fix.north - source[1]))
    return errors


def test_two_classifying_sensors_and_reported_onsets_locate_the_shot() -> None:
    rng = np.random.default_rng(7)
    near = _nearest(2)
    detections = [_detection(i, _arrival(i) + rng.normal(0, 0.0005)) for i in near]
    # alone, two sensors give an approximate area
    assert _located(associate(detections, PARAMS)) == []
    others = [i for i in range(len(SENSORS)) if i not in near]
    onsets = [_onset(i, _arrival(i) + rng.normal(0, 0.0005)) for i in others]
    bursts = associate(detections, PARAMS, onsets=onsets)
    assert len(bursts) == 1 and len(bursts[0].shots) == 1
    shot = bursts[0].shots[0]
    errors = _located(bursts)
    assert len(errors) == 1 and errors[0] < 1.0
    assert len(shot.by_sensor) >= 10  # the far sensors took part
    # the onsets count for the fix, never for the label
    assert bursts[0].label == "gunshot" and set(bursts[0].evidence) == {"gunshot"}
    assert len(shot.classified) == 2


def test_one_classifying_sensor_needs_four_reported_onsets() -> None:
    first, *others = _nearest(5)
    detection = [_detection(first, _arrival(first))]
    three = [_onset(i, _arrival(i)) for i in others[:3]]
    assert _located(associate(detection, PARAMS, onsets=three)) == []
    four = [_onset(i, _arrival(i)) for i in others]
    errors = _located(associate(detection, PARAMS, onsets=four))
    assert len(errors) == 1 and errors[0] < 1.0


def test_onsets_alone_never_found_a_shot() -> None:
    onsets = [_onset(i, _arrival(i)) for i in range(len(SENSORS))]
    assert associate([], PARAMS, onsets=onsets) == []


def test_an_onset_of_another_sound_is_not_taken() -> None:
    near = _nearest(2)
    detections = [_detection(i, _arrival(i)) for i in near]
    others = [i for i in _nearest(8) if i not in near]
    good = [_onset(i, _arrival(i)) for i in others[:3]]
    # a door slamming 40 ms after the shot reached that sensor: within the travel-time bound
    # of the classifying sensors, 14 m of travel off the shot's fit
    slam = _onset(others[3], _arrival(others[3]) + 0.04, tag="door")
    bursts = associate(detections, PARAMS, onsets=[*good, slam])
    shot = bursts[0].shots[0]
    assert slam.key not in {h.key for h in shot.members}
    assert len(_located(bursts)) == 1


def test_a_sensor_with_two_onsets_gives_the_one_that_fits() -> None:
    near = _nearest(2)
    detections = [_detection(i, _arrival(i)) for i in near]
    others = [i for i in _nearest(7) if i not in near]
    onsets = [_onset(i, _arrival(i)) for i in others]
    echo = _onset(others[0], _arrival(others[0]) + 0.03, tag="echo")  # a facade's echo
    bursts = associate(detections, PARAMS, onsets=[*onsets, echo])
    keys = {h.key for h in bursts[0].shots[0].members}
    assert onsets[0].key in keys and echo.key not in keys


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_order_of_onsets_never_changes_the_result(rnd: object) -> None:
    rng = np.random.default_rng(11)
    near = _nearest(2)
    detections = [_detection(i, _arrival(i) + rng.normal(0, 0.001)) for i in near]
    onsets = [
        _onset(i, _arrival(i) + rng.normal(0, 0.001)) for i in range(len(SENSORS)) if i not in near
    ]
    onsets.append(_onset(onsets[0].sensor, onsets[0].onset + 0.2, tag="late"))
    reference = associate(detections, PARAMS, onsets=onsets)
    shuffled = list(onsets)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    again = associate(list(reversed(detections)), PARAMS, onsets=shuffled)

    def summary(bursts: list) -> list:  # type: ignore[type-arg]
        return [
            [*sorted(h.key for h in shot.members), round(shot.fix.east, 6)]
            for b in bursts
            for shot in b.shots
        ]

    assert summary(again) == summary(reference)


# -- the hub --------------------------------------------------------------------------------


def _hub(tmp_path: object) -> tuple[Hub, InProcBus]:
    bus = InProcBus()
    hub = Hub(settings_for(f"sqlite:///{tmp_path}/hub.sqlite3"), bus=bus)  # type: ignore[str-format]
    return hub, bus


def test_the_hub_asks_stores_and_locates(tmp_path: object) -> None:
    async def scenario() -> None:
        hub, bus = _hub(tmp_path)
        await hub.start()
        layout = sensor_grid(8)
        register_sensors(hub, layout)
        requests = bus.subscribe("ouie/v1/+/+/onset-request")
        t0 = utc_now() - timedelta(seconds=20)
        source = (5.0, 12.0)
        events = events_for_source(layout, *source, t0)
        by_distance = sorted(events, key=lambda e: e.onset)
        classified = by_distance[:2]
        for event in classified:
            await hub.submit(
                Envelope("bus", topic_for(SITE, event.sensor_id, "events"), encode(event))
            )
        await hub.drain()
        with hub.sessions() as session:
            incident = session.execute(select(Incident)).scalar_one()
            assert incident.method == "area" and incident.sensor_count == 2
        asked: dict[str, OnsetRequestMessage] = {}
        while (message := requests.get_nowait()) is not None:
            request = OnsetRequestMessage.model_validate_json(message.payload)
            asked[request.sensor_id] = request
        others = {e.sensor_id: e for e in events if e not in classified}
        assert set(asked) == set(others)  # every other sensor of the site, once
        for sensor_id, request in asked.items():
            assert request.incident_id == incident.id
            assert request.start <= others[sensor_id].onset <= request.end
            assert (request.end - request.start).total_seconds() <= 4.0
        # the sensors answer: the shot's arrival, and one sensor a second, unrelated bang
        for sensor_id, event in others.items():
            answer = ImpulseOnsetMessage(
                request_id=asked[sensor_id].request_id,
                site=SITE,
                sensor_id=sensor_id,
                sent_at=utc_now(),
                index=0,
                count=1,
                onset=event.onset,
                level_dbfs=-30.0,
                prominence_db=25.0,
            )
            await hub.submit(Envelope("bus", topic_for(SITE, sensor_id, "onsets"), encode(answer)))
        await hub.drain()
        with hub.sessions() as session:
            incident = session.execute(select(Incident)).scalar_one()
            shot = session.execute(select(Shot)).scalar_one()
            assert incident.method == "tdoa" and shot.method == "tdoa"
            assert shot.sensor_count == len(layout) and shot.detection_count == 2
            view = ShotView.of(shot)  # what the API and the console show of the round
            assert view.onset_sensor_count == len(layout) - 2 and not view.approximate
            assert incident.detection_count == 2 and incident.label == "gunshot"
            east, north = enu_of(incident.lat, incident.lon)
            assert math.hypot(east - source[0], north - source[1]) < 2.0
            rows = session.execute(select(ImpulseOnsetRow)).scalars().all()
            assert len(rows) == len(others)
            assert all(r.incident_id == incident.id and r.shot_number == 1 for r in rows)
            actions = session.execute(select(AuditEntry.action)).scalars().all()
            assert "onsets.requested" in actions
        # no second request for the same windows
        assert requests.get_nowait() is None
        # the answers are kept as long as detections, no longer
        report = hub.retention_once(now=utc_now() + timedelta(days=31))
        assert report[SITE]["impulses"] == len(others)
        requests.close()
        await hub.stop()
        hub.close()

    asyncio.run(scenario())


def test_an_empty_answer_and_a_replayed_one(tmp_path: object) -> None:
    async def scenario() -> None:
        hub, _ = _hub(tmp_path)
        await hub.start()
        register_sensors(hub, sensor_grid(5))
        empty = ImpulseOnsetMessage(
            request_id="a" * 32, site=SITE, sensor_id="s3", sent_at=utc_now(), index=0, count=0
        )
        envelope = Envelope("bus", topic_for(SITE, "s3", "onsets"), encode(empty))
        result = hub.processor.process([envelope, envelope])
        assert result.outcomes == ["accepted", "duplicate"]
        without_level = empty.model_copy(
            update={"message_id": "b" * 32, "count": 1, "onset": utc_now()}
        )
        bad = Envelope("bus", topic_for(SITE, "s3", "onsets"), encode(without_level))
        assert hub.processor.process([bad]).outcomes == ["rejected:invalid"]
        wrong_topic = Envelope("bus", topic_for(SITE, "s2", "onsets"), encode(empty))
        assert hub.processor.process([wrong_topic]).outcomes[0].startswith("rejected:")
        with hub.sessions() as session:
            assert session.execute(select(ImpulseOnsetRow)).first() is None
        await hub.stop()
        hub.close()

    asyncio.run(scenario())


def test_no_request_for_a_shot_that_reached_four_sensors_meanwhile(tmp_path: object) -> None:
    """The first detections of a shot ask for onsets; when the other classifying sensors'
    detections follow within the ask's delay, the shot needs none and nothing is sent."""

    async def scenario() -> tuple[int, list[str]]:
        hub, bus = _hub(tmp_path)
        await hub.start()
        layout = sensor_grid(8)
        register_sensors(hub, layout)
        requests = bus.subscribe("ouie/v1/+/+/onset-request")
        events = sorted(
            events_for_source(layout, 5.0, 12.0, utc_now() - timedelta(seconds=20)),
            key=lambda e: e.onset,
        )
        for event in events[:2]:  # a batch of its own: the shot has two sensors
            await hub.submit(
                Envelope("bus", topic_for(SITE, event.sensor_id, "events"), encode(event))
            )
        while hub.worker.finished < 2:  # committed; its ask now waits ONSET_ASK_DELAY_S
            await asyncio.sleep(0.005)
        assert hub.background
        for event in events[2:5]:  # then three more, as one batch
            await hub.submit(
                Envelope("bus", topic_for(SITE, event.sensor_id, "events"), encode(event))
            )
        await hub.drain()
        sent = 0
        while requests.get_nowait() is not None:
            sent += 1
        with hub.sessions() as session:
            actions = list(session.execute(select(AuditEntry.action)).scalars())
        requests.close()
        await hub.stop()
        hub.close()
        return sent, actions

    sent, actions = asyncio.run(scenario())
    assert sent == 0 and "onsets.requested" not in actions
