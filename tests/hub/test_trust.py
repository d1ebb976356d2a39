"""Which sensor messages the hub believes (``ouie.hub.trust`` through ingest): signatures,
replays by sequence and by time, persisted marks, refusals counted and audited."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from ouie.core.messages import EventMessage, StatusMessage, topic_for
from ouie.core.timebase import utc_now
from ouie.hub import sensors
from ouie.hub.db import AuditEntry, DeadLetter, Detection, Sensor, SensorRejection
from ouie.hub.ingest import BatchResult, Envelope
from ouie.hub.mqtt import receipt_for
from ouie.hub.service import Hub
from ouie.hub.trust import SEQUENCE_WINDOW, SequenceWindow
from ouie.transport.signing import SigningKey
from tests.hub.helpers import (
    SITE,
    events_for_source,
    register_sensors,
    sensor_grid,
    settings_for,
    status_for,
)

LAYOUT = sensor_grid(3)


def _keyed_hub(url: str, **ingest: object) -> tuple[Hub, dict[str, SigningKey]]:
    settings = settings_for(url)
    settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update=ingest)})
    hub = Hub(settings)
    hub.prepare()
    register_sensors(hub, LAYOUT)
    keys = {sensor_id: SigningKey.generate() for sensor_id, _, _ in LAYOUT[:2]}  # s3: none
    with hub.sessions() as session, session.begin():
        for sensor_id, key in keys.items():
            sensor = sensors.find(session, SITE, sensor_id)
            assert sensor is not None
            sensors.set_identity(
                session,
                sensor,
                signing_key=key.public.text,
                cert_fingerprint=None,
                actor="test",
                now=utc_now(),
            )
    hub.reload_sensors()
    return hub, keys


def _envelope(message: EventMessage | StatusMessage, raw: bytes | None = None) -> Envelope:
    kind = "events" if isinstance(message, EventMessage) else "status"
    return Envelope(
        source="mqtt",
        topic=topic_for(message.site, message.sensor_id, kind),
        payload=raw if raw is not None else message.model_dump_json().encode(),
    )


def _process(hub: Hub, *messages: EventMessage | StatusMessage) -> BatchResult:
    return hub.processor.process([_envelope(m) for m in messages])


def _event(sequence: int, seconds_ago: float = 1.0, sensor: str = "s1") -> EventMessage:
    events = events_for_source(
        LAYOUT, 3.0, 4.0, utc_now() - timedelta(seconds=seconds_ago), sequence=sequence
    )
    return next(e for e in events if e.sensor_id == sensor)


def test_signed_messages_pass_and_forgeries_do_not(sqlite_url: str) -> None:
    hub, keys = _keyed_hub(sqlite_url)
    key = keys["s1"]
    result = _process(
        hub,
        key.sign_message(_event(1)),
        _event(2),  # unsigned, from a sensor that has a key
        SigningKey.generate().sign_message(_event(3)),  # someone else's key
        keys["s2"].sign_message(_event(4)),  # s2's key on s1's message
        key.sign_message(_event(5)).model_copy(update={"peak_score": 0.99}),  # altered
        _event(6, sensor="s3"),  # an unkeyed sensor: accepted while signatures are optional
    )
    assert result.outcomes == [
        "accepted",
        "rejected:unsigned",
        "rejected:bad_signature",
        "rejected:bad_signature",
        "rejected:bad_signature",
        "accepted",
    ]
    hub.close()


def test_signatures_can_be_required_of_every_sensor(sqlite_url: str) -> None:
    hub, keys = _keyed_hub(sqlite_url, require_signatures=True)
    result = _process(hub, _event(1, sensor="s3"), keys["s1"].sign_message(_event(1)))
    assert result.outcomes == ["rejected:unsigned", "accepted"]
    hub.close()


def test_sequences_must_be_new_across_batches_and_restarts(sqlite_url: str) -> None:
    hub, keys = _keyed_hub(sqlite_url)
    key = keys["s1"]
    first = key.sign_message(_event(5))
    assert _process(hub, first).outcomes == ["accepted"]
    # the very message again (an at-least-once resend) is a duplicate, not a refusal
    assert _process(hub, first).outcomes == ["duplicate"]
    # another message with a stored sequence is a replay
    assert _process(hub, key.sign_message(_event(5))).outcomes == ["rejected:replay"]
    # a batch that arrived out of order (7 before 6) is taken in sequence order
    assert _process(hub, key.sign_message(_event(7)), key.sign_message(_event(6))).outcomes == [
        "accepted",
        "accepted",
    ]
    hub.close()
    restarted = Hub(hub.settings)  # the marks are in the database, not in memory
    restarted.prepare()
    assert _process(restarted, key.sign_message(_event(7))).outcomes == ["rejected:replay"]
    assert _process(restarted, key.sign_message(_event(8))).outcomes == ["accepted"]
    with restarted.sessions() as session:
        assert session.scalar(select(Sensor.last_sequence).where(Sensor.sensor_id == "s1")) == 8
    restarted.close()


def _stored_sequences(hub: Hub, sensor: str = "s1") -> list[int]:
    with hub.sessions() as session:
        return sorted(
            session.scalars(select(Detection.sequence).where(Detection.sensor_id == sensor)).all()
        )


def test_a_late_resend_is_stored_once_in_any_order(sqlite_url: str) -> None:
    """The broker dropped 3 and 4 while the node stayed connected; the node resent them
    after 5..7 were stored (issue 18's known gap: they were refused as replays)."""
    hub, keys = _keyed_hub(sqlite_url)
    key = keys["s1"]
    shots = {n: key.sign_message(_event(n)) for n in range(8)}
    assert _process(hub, *(shots[n] for n in (0, 1, 2, 5, 6, 7))).outcomes == ["accepted"] * 6
    assert _process(hub, shots[4]).outcomes == ["accepted"]
    hub.close()
    restarted = Hub(hub.settings)  # what was stored below the last is persisted too
    restarted.prepare()
    assert _process(restarted, shots[3], shots[4]).outcomes == ["accepted", "duplicate"]
    assert _stored_sequences(restarted) == list(range(8))
    with restarted.sessions() as session:
        # the late ones do not lower the mark
        assert session.scalar(select(Sensor.last_sequence).where(Sensor.sensor_id == "s1")) == 7
    restarted.close()


def test_an_exact_replay_is_never_stored_again(sqlite_url: str) -> None:
    hub, keys = _keyed_hub(sqlite_url)
    key = keys["s1"]
    late, stored = key.sign_message(_event(2)), key.sign_message(_event(3))
    assert _process(hub, stored, key.sign_message(_event(4))).outcomes == ["accepted"] * 2
    assert _process(hub, late).outcomes == ["accepted"]
    # replayed as captured: caught by its message_id, or, once its detection is gone
    # (retention), by its sequence
    assert _process(hub, late, stored).outcomes == ["duplicate", "duplicate"]
    with hub.sessions() as session, session.begin():
        session.execute(Detection.__table__.delete())
    assert _process(hub, late, stored).outcomes == ["rejected:replay", "rejected:replay"]
    assert _process(hub, key.sign_message(_event(2))).outcomes == ["rejected:replay"]
    assert _stored_sequences(hub) == []
    hub.close()


def test_a_sequence_older_than_the_window_is_refused(sqlite_url: str) -> None:
    hub, keys = _keyed_hub(sqlite_url)
    key = keys["s1"]
    top = SEQUENCE_WINDOW + 10
    assert _process(hub, key.sign_message(_event(top))).outcomes == ["accepted"]
    assert _process(
        hub,
        key.sign_message(_event(top - SEQUENCE_WINDOW)),  # just outside the window
        key.sign_message(_event(top - SEQUENCE_WINDOW + 1)),  # the oldest one inside
    ).outcomes == ["rejected:replay", "accepted"]
    with hub.sessions() as session:
        details = session.scalars(
            select(DeadLetter.detail).where(DeadLetter.reason == "replay")
        ).all()
    assert details == [f"sequence 10 is older than the last {SEQUENCE_WINDOW} below {top}"]
    hub.close()


def test_the_window_slides_and_survives_its_encoding() -> None:
    window = SequenceWindow(None, 0, size=8)
    assert [window.admit(n) for n in (10, 12, 11)] == [None, None, None]
    assert window.admit(11) is not None and window.admit(4) is not None
    assert window.admit(5) is None  # 12 - 5 = 7 < 8: inside
    window = SequenceWindow.load(window.last, window.dump(), size=8)
    assert window.admit(5) is not None and window.admit(6) is None
    assert window.admit(40) is None  # a jump clears what slid out
    assert window.admit(39) is None and window.admit(32) is not None
    # marks written before the window existed: everything up to the last counts as stored
    legacy = SequenceWindow.load(40, None, size=8)
    assert legacy.admit(39) is not None and legacy.admit(41) is None


def test_signed_messages_older_than_the_window_are_refused(sqlite_url: str) -> None:
    hub, keys = _keyed_hub(sqlite_url, replay_window_s=60.0)
    result = _process(
        hub,
        keys["s1"].sign_message(_event(1, seconds_ago=120.0)),
        keys["s2"].sign_message(_event(1, seconds_ago=30.0, sensor="s2")),
        _event(1, seconds_ago=120.0, sensor="s3"),  # unkeyed: only max_age_s applies
    )
    assert result.outcomes == ["rejected:clock_stale", "accepted", "accepted"]
    hub.close()


def test_an_old_heartbeat_does_not_refresh_a_sensor(sqlite_url: str) -> None:
    hub, keys = _keyed_hub(sqlite_url)
    key = keys["s1"]
    now = utc_now()
    current = key.sign_message(status_for("s1").model_copy(update={"sent_at": now}))
    older = key.sign_message(
        status_for("s1").model_copy(update={"sent_at": now - timedelta(seconds=30)})
    )
    assert _process(hub, current).outcomes == ["accepted"]
    with hub.sessions() as session:
        seen = session.scalar(select(Sensor.last_seen_at).where(Sensor.sensor_id == "s1"))
    assert _process(hub, current).outcomes == ["duplicate"]  # resent
    assert _process(hub, older, status_for("s1")).outcomes == [
        "rejected:replay",
        "rejected:unsigned",
    ]
    with hub.sessions() as session:
        sensor = session.scalars(select(Sensor).where(Sensor.sensor_id == "s1")).one()
        assert sensor.last_seen_at == seen
        assert sensor.last_status_at == now
    hub.close()


def test_refusals_are_counted_per_sensor_and_audited_sparingly(sqlite_url: str) -> None:
    hub, keys = _keyed_hub(sqlite_url)
    for sequence in range(3):  # three batches of forgeries
        _process(hub, _event(sequence), _event(sequence, sensor="s2"))
    _process(hub, keys["s1"].sign_message(_event(10, seconds_ago=3600)))
    with hub.sessions() as session:
        counts = {
            (sensor_id, reason): count
            for sensor_id, reason, count in session.execute(
                select(Sensor.sensor_id, SensorRejection.reason, SensorRejection.count).join(
                    Sensor, Sensor.id == SensorRejection.sensor_pk
                )
            )
        }
        audits = [
            (object_id, json.loads(detail))
            for object_id, detail in session.execute(
                select(AuditEntry.object_id, AuditEntry.detail).where(
                    AuditEntry.action == "sensor.messages_rejected"
                )
            )
        ]
        dead = session.scalar(select(func.count()).select_from(DeadLetter))
        stored = session.scalar(select(func.count()).select_from(Detection))
    assert counts == {("s1", "unsigned"): 3, ("s2", "unsigned"): 3, ("s1", "clock_stale"): 1}
    # once per sensor and reason within the hour, not once per forgery
    assert sorted((o, d["reason"], d["count"]) for o, d in audits) == [
        (f"{SITE}/s1", "clock_stale", 1),
        (f"{SITE}/s1", "unsigned", 1),
        (f"{SITE}/s2", "unsigned", 1),
    ]
    assert dead == 7 and stored == 0
    hub.close()


def test_audit_interval_zero_audits_every_batch(sqlite_url: str) -> None:
    hub, _ = _keyed_hub(sqlite_url, rejection_audit_interval_s=0.0)
    _process(hub, _event(1), _event(2))
    _process(hub, _event(3))
    with hub.sessions() as session:
        counts = [
            json.loads(d)["count"]
            for d in session.scalars(
                select(AuditEntry.detail)
                .where(AuditEntry.action == "sensor.messages_rejected")
                .order_by(AuditEntry.seq)
            )
        ]
    assert counts == [2, 1]  # what was refused since the previous entry
    hub.close()


def test_a_new_identity_replaces_the_key_and_restarts_the_sequence(sqlite_url: str) -> None:
    hub, keys = _keyed_hub(sqlite_url)
    assert _process(hub, keys["s1"].sign_message(_event(50))).outcomes == ["accepted"]
    new = SigningKey.generate()
    with hub.sessions() as session, session.begin():
        sensor = sensors.find(session, SITE, "s1")
        assert sensor is not None
        sensors.set_identity(
            session,
            sensor,
            signing_key=new.public.text,
            cert_fingerprint="ab" * 32,
            actor="test",
            now=utc_now(),
        )
    hub.reload_sensors()
    # a replaced node starts counting again; the old key no longer works
    assert _process(
        hub, new.sign_message(_event(0)), keys["s1"].sign_message(_event(1))
    ).outcomes == [
        "accepted",
        "rejected:bad_signature",
    ]
    hub.close()


def test_http_re_encoding_keeps_the_signature(sqlite_url: str) -> None:
    hub, keys = _keyed_hub(sqlite_url)
    message = keys["s1"].sign_message(_event(1))
    # what the HTTP ingest route does with a body: parse, then json.dumps
    body = json.dumps(json.loads(message.model_dump_json())).encode()
    result = hub.processor.process([_envelope(message, body)])
    assert result.outcomes == ["accepted"]
    hub.close()


def test_receipts_confirm_replays_but_not_forgeries() -> None:
    """A node whose spool was wiped restarts its sequence: its refused messages must leave
    the spool (a receipt), while a bad signature gets none: nobody can empty another
    sensor's spool by forging."""
    message = _event(1)
    topic, payload = topic_for(SITE, "s1", "events"), message.model_dump_json().encode()
    replay = receipt_for(topic, payload, "rejected:replay")
    assert replay is not None and b'"outcome":"rejected"' in replay[1]
    assert receipt_for(topic, payload, "rejected:bad_signature") is None
    assert receipt_for(topic, payload, "rejected:unsigned") is None
