"""Events in → located incidents out, through the in-process bus and the ingest worker."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import numpy as np
from sqlalchemy import func, select

from ouie.core.geo import ENUFrame
from ouie.core.labels import EventLabel
from ouie.core.messages import topic_for
from ouie.core.timebase import utc_now
from ouie.hub.db import DeadLetter, Detection, Incident, Sensor
from ouie.hub.service import Hub
from ouie.transport.base import encode
from ouie.transport.inproc import InProcBus
from tests.hub.helpers import (
    ORIGIN,
    SITE,
    enu_of,
    events_for_source,
    register_sensors,
    sensor_grid,
    settings_for,
    status_for,
)


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_bus_events_become_one_located_incident(sqlite_url: str) -> None:
    async def scenario() -> None:
        bus = InProcBus()
        hub = Hub(settings_for(sqlite_url), bus=bus)
        await hub.start()
        layout = sensor_grid(5)
        register_sensors(hub, layout)
        t0 = utc_now() - timedelta(seconds=2)
        for message in events_for_source(layout, 12.0, -7.0, t0):
            await bus.publish(topic_for(SITE, message.sensor_id, "events"), encode(message))
        await bus.publish(topic_for(SITE, "s1", "status"), encode(status_for("s1")))
        await hub.drain()
        await hub.stop()
        with hub.sessions() as session:
            incidents = session.execute(select(Incident)).scalars().all()
            assert len(incidents) == 1
            incident = incidents[0]
            assert incident.method == "tdoa"
            assert incident.sensor_count == 5
            east, north = enu_of(incident.lat, incident.lon)
            assert abs(east - 12.0) < 0.5 and abs(north + 7.0) < 0.5
            assert incident.ellipse_major_m is not None and incident.ellipse_major_m < 10
            sensor = session.execute(select(Sensor).where(Sensor.sensor_id == "s1")).scalar_one()
            assert sensor.health == "ok" and sensor.last_status is not None
        hub.close()

    _run(scenario())


def test_duplicates_dropped_and_bad_messages_dead_lettered(sqlite_url: str) -> None:
    async def scenario() -> None:
        bus = InProcBus()
        hub = Hub(settings_for(sqlite_url), bus=bus)
        await hub.start()
        layout = sensor_grid(4)
        register_sensors(hub, layout)
        events = events_for_source(layout, 0.0, 0.0, utc_now())
        for message in events + events[:2]:  # two redeliveries
            await bus.publish(topic_for(SITE, message.sensor_id, "events"), encode(message))
        await bus.publish(topic_for(SITE, "s1", "events"), b"{not json")
        await bus.publish(topic_for(SITE, "s2", "events"), encode(events[0]))  # wrong topic
        future = events[0].model_copy(
            update={
                "onset": utc_now() + timedelta(hours=1),
                "offset": utc_now() + timedelta(hours=1, seconds=1),
                "message_id": "f" * 32,
            }
        )
        await bus.publish(topic_for(SITE, "s1", "events"), encode(future))
        ghost = events[0].model_copy(update={"sensor_id": "ghost", "message_id": "e" * 32})
        await bus.publish(topic_for(SITE, "ghost", "events"), encode(ghost))
        await hub.drain()
        await hub.stop()
        with hub.sessions() as session:
            assert session.execute(select(func.count()).select_from(Detection)).scalar_one() == 4
            reasons = sorted(session.execute(select(DeadLetter.reason)).scalars())
            assert reasons == ["clock_future", "not_json", "topic_mismatch", "unknown_sensor"]
        text = hub.metrics.render().decode()
        assert "ouie_hub_duplicates_total 2.0" in text
        assert 'ouie_hub_rejects_total{reason="not_json"} 1.0' in text
        hub.close()

    _run(scenario())


def test_two_sounds_far_apart_in_time_make_two_incidents(hub: Hub) -> None:
    layout = sensor_grid(4)
    register_sensors(hub, layout)
    t0 = utc_now() - timedelta(minutes=5)
    from ouie.hub.ingest import Envelope

    def envs(messages):  # type: ignore[no-untyped-def]
        return [
            Envelope("bus", topic_for(SITE, m.sensor_id, "events"), encode(m)) for m in messages
        ]

    first = events_for_source(layout, 5.0, 5.0, t0)
    second = events_for_source(layout, -20.0, 10.0, t0 + timedelta(seconds=60))
    # the same sound, also reported as breaking glass by every sensor: one sound, not two
    glass = [
        m.model_copy(update={"message_id": "a" * 31 + str(i)})
        for i, m in enumerate(events_for_source(layout, 5.0, 5.0, t0, EventLabel.GLASS_BREAKING))
    ]
    hub.processor.process(envs(first[:2]))
    hub.processor.process(envs(first[2:] + second + glass))
    with hub.sessions() as session:
        rows = session.execute(select(Incident).order_by(Incident.first_onset)).scalars().all()
        assert len(rows) == 2
        assert all(row.method == "tdoa" and row.sensor_count == 4 for row in rows)
        assert [(row.rounds, row.located_rounds) for row in rows] == [(1, 1), (1, 1)]
        assert [row.detection_count for row in rows] == [8, 4]
        located = sorted((round(enu_of(r.lat, r.lon)[0]), r.label) for r in rows)
        # equal evidence for both labels: the more serious class is reported
        assert located == [(-20, "gunshot"), (5, "gunshot")]
        first_incident = [d for d in rows[0].detections]
        # one detection per sensor locates the sound; the other label only adds evidence
        assert sorted(d.fused_as for d in first_incident) == ["tdoa"] * 4 + ["update"] * 4
        assert {d.shot_number for d in first_incident} == {1}


def test_fewer_than_three_sensors_give_an_area_not_a_point(hub: Hub) -> None:
    layout = sensor_grid(4)
    register_sensors(hub, layout)
    from ouie.hub.ingest import Envelope

    events = events_for_source(layout, -35.0, -35.0, utc_now())[:2]
    hub.processor.process(
        [Envelope("bus", topic_for(SITE, m.sensor_id, "events"), encode(m)) for m in events]
    )
    with hub.sessions() as session:
        incident = session.execute(select(Incident)).scalar_one()
        assert incident.method == "area" and incident.approximate
        assert (incident.rounds, incident.located_rounds) == (1, 0)
        shot = incident.shots[0]
        assert shot.method == "area" and shot.sensor_count == 2
    # the area holds the source, and is not a point placed at the sensors
    east, north = enu_of(incident.lat, incident.lon)
    source_offset = np.hypot(east + 35.0, north + 35.0)
    assert source_offset <= incident.radius_m
    assert incident.ellipse_major_m is not None and incident.ellipse_major_m > 20.0
    assert ENUFrame(*ORIGIN).lat0 == ORIGIN[0]


def test_a_sustained_sound_with_vague_onsets_gets_an_area_holding_it(hub: Hub) -> None:
    """A siren's onsets fall on the node's 0.25 s hop: its time differences say nothing, so
    the hub gives the region the sensors can all hear, never one drawn from its timing."""
    layout = sensor_grid(5)
    register_sensors(hub, layout)
    from ouie.hub.ingest import Envelope

    t0 = utc_now() - timedelta(seconds=30)
    events = events_for_source(layout, -30.0, -10.0, t0, EventLabel.SIREN)
    # each onset moved to the start of a 0.25 s window: the nearest sensors' the latest
    hop = [0.75, 0.0, 0.25, 0.5, 0.0]
    events = [
        m.model_copy(
            update={
                "onset": m.onset + timedelta(seconds=h),
                "offset": m.onset + timedelta(seconds=h + 5.0),
            }
        )
        for m, h in zip(events, hop, strict=True)
    ]
    hub.processor.process(
        [Envelope("bus", topic_for(SITE, m.sensor_id, "events"), encode(m)) for m in events]
    )
    with hub.sessions() as session:
        incident = session.execute(select(Incident)).scalar_one()
        assert incident.label == "siren" and incident.sensor_count == 5
        assert incident.method == "area" and incident.approximate
        assert incident.located_rounds == 0
        # every sensor that heard it bounds the area, none is a mere "update"
        assert {d.fused_as for d in incident.detections} == {"tdoa"}
    east, north = enu_of(incident.lat, incident.lon)
    assert np.hypot(east + 30.0, north + 10.0) <= incident.radius_m


def test_a_gunshot_heard_far_away_by_one_sensor_gets_a_gunshot_s_reach(hub: Hub) -> None:
    layout = sensor_grid(4)
    register_sensors(hub, layout)
    from ouie.hub.ingest import Envelope

    far = events_for_source(layout, 300.0, 0.0, utc_now() - timedelta(seconds=30))
    nearest = min(far, key=lambda m: m.onset)
    hub.processor.process(
        [Envelope("bus", topic_for(SITE, nearest.sensor_id, "events"), encode(nearest))]
    )
    with hub.sessions() as session:
        incident = session.execute(select(Incident)).scalar_one()
        assert incident.method == "area" and incident.sensor_count == 1
    east, north = enu_of(incident.lat, incident.lon)
    assert np.hypot(east - 300.0, north) <= incident.radius_m
    assert incident.radius_m <= hub.settings.fusion.hearing_range_m[EventLabel.GUNSHOT] + 10.0


def test_a_siren_whose_onsets_agree_at_four_sensors_is_located(hub: Hub) -> None:
    """Where the node found the siren's rise at every sensor, the onsets are as good as a
    shot's, and four or more sensors that one source explains give a point."""
    layout = sensor_grid(5)
    register_sensors(hub, layout)
    from ouie.hub.ingest import Envelope

    events = events_for_source(
        layout, 12.0, -8.0, utc_now() - timedelta(seconds=30), EventLabel.SIREN
    )
    hub.processor.process(
        [Envelope("bus", topic_for(SITE, m.sensor_id, "events"), encode(m)) for m in events]
    )
    with hub.sessions() as session:
        incident = session.execute(select(Incident)).scalar_one()
        assert incident.method == "tdoa" and incident.located_rounds == 1
    east, north = enu_of(incident.lat, incident.lon)
    assert np.hypot(east - 12.0, north + 8.0) < 1.0
