"""The console's sensor page shows whether a sensor's messages are verified and what the hub
refused from it (issue 18: "rejections counted per sensor, shown in the console")."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from ouie.core.labels import EventLabel
from ouie.core.messages import EventMessage, topic_for
from ouie.core.timebase import utc_now
from ouie.hub import sensors
from ouie.hub.ingest import Envelope
from ouie.transport.signing import SigningKey
from ouie.web.i18n import translate
from tests.web.hubenv import SITE, HubEnv
from tests.web.test_pages import HTML, login

SENSOR = "se-01-place-so"


def test_the_sensor_page_shows_its_key_and_the_refused_messages(
    web: tuple[HubEnv, TestClient],
) -> None:
    env, client = web
    key = SigningKey.generate()
    with env.hub.sessions() as session, session.begin():
        sensor = sensors.find(session, SITE, SENSOR)
        assert sensor is not None
        sensors.set_identity(
            session,
            sensor,
            signing_key=key.public.text,
            cert_fingerprint="cd" * 32,
            actor="test",
            now=utc_now(),
        )
    env.hub.reload_sensors()
    onset = utc_now() - timedelta(seconds=1)
    forged = EventMessage(
        site=SITE,
        sensor_id=SENSOR,
        label=EventLabel.GUNSHOT,
        onset=onset,
        offset=onset + timedelta(seconds=0.2),
        peak_score=0.9,
        level_dbfs=-10.0,
        model_id="forger",
        sequence=1,
    )
    topic = topic_for(SITE, SENSOR, "events")
    outcomes = env.hub.processor.process(
        [Envelope(source="mqtt", topic=topic, payload=forged.model_dump_json().encode())] * 2
        + [
            Envelope(
                source="mqtt",
                topic=topic,
                payload=SigningKey.generate().sign_message(forged).model_dump_json().encode(),
            )
        ]
    ).outcomes
    assert outcomes == ["rejected:unsigned", "rejected:unsigned", "rejected:bad_signature"]

    login(client, "viewer")
    page = client.get(f"/console/sensors/{SITE}/{SENSOR}", headers=HTML)
    assert page.status_code == 200
    card = page.text.split('data-testid="trust"')[1].split("</section>")[0]
    assert key.public.text[:16] in card and ("cd" * 8) in card
    assert '<tr data-reason="unsigned"><td><code>unsigned</code></td><td class="num">2</td>' in card
    assert 'data-reason="bad_signature"' in card
    listed = client.get("/api/v1/sensors").json()["sensors"]
    mine = next(s for s in listed if s["sensor_id"] == SENSOR)
    assert mine["rejections"] == {"bad_signature": 1, "unsigned": 2}
    assert mine["signing_key"] == key.public.text
    # a sensor without a key says its messages are not verified
    other = client.get(f"/console/sensors/{SITE}/se-02-place-se", headers=HTML)
    assert any(translate(lang, "sensor.unsigned") in other.text for lang in ("en", "fr"))
