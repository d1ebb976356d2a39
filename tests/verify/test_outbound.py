"""Outbound: signed webhooks with retries and dead letters, CAP 1.2, VMS bookmarks."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from ouie.config.outputs import (
    CapOutput,
    RetryPolicy,
    VmsWebhookOutput,
    WebhookFilter,
    WebhookOutput,
)
from ouie.core.labels import EventLabel
from ouie.verify.cap import CapAction, cap_time, render_cap
from ouie.verify.cctv import CueResult
from ouie.verify.credentials import SecretBox
from ouie.verify.dead_letters import JsonlDeadLetters, MemoryDeadLetters
from ouie.verify.events import EventLog, VmsBookmarkSent, WebhookDeadLettered, WebhookDelivered
from ouie.verify.incident import IncidentNotice, IncidentRef
from ouie.verify.outputs import Outputs
from ouie.verify.peers.http_receiver import HttpReceiver
from ouie.verify.plugin import OutputContext
from ouie.verify.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify_signature,
)
from ouie.verify.webhook import matches
from tests._services import require_module
from tests.verify.conftest import ORIGIN, incident_at

CAP_XSD = Path(__file__).with_name("CAP-v1.2.xsd")


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def notice(change: str = "created", **changes: object) -> IncidentNotice:
    incident = incident_at(*ORIGIN).model_copy(update=changes)
    return IncidentNotice.model_validate({"change": change, "incident": incident})


def run_outputs(
    configs: list[object], notices: list[IncidentNotice], ctx: OutputContext
) -> Outputs:
    outputs = Outputs(configs, ctx)

    async def go() -> None:
        for item in notices:
            await outputs.on_incident(item)
        await outputs.close()

    asyncio.run(go())
    return outputs


def test_signed_delivery(box: SecretBox) -> None:
    log = EventLog()
    with HttpReceiver([200]) as receiver:
        config = WebhookOutput(
            id="police",
            url=receiver.url + "/hook",
            secret_enc=box.encrypt("shared-secret"),
            headers={"Authorization": "Bearer integration-token"},
        )
        run_outputs([config], [notice()], OutputContext(secrets=box, audit=log))
        assert receiver.wait_for(1)
    (request,) = receiver.requests
    body = json.loads(request.body)
    assert body["event"] == "incident.created" and body["incident"]["id"] == "inc-1"
    assert body["incident"]["label"] == "gunshot"
    assert request.headers[EVENT_HEADER] == "incident.created"
    assert request.headers[DELIVERY_HEADER] == body["delivery_id"]
    assert request.headers["Authorization"] == "Bearer integration-token"
    assert verify_signature("shared-secret", request.headers, request.body)
    assert not verify_signature("other-secret", request.headers, request.body)
    assert not verify_signature("shared-secret", request.headers, request.body + b" ")
    stale = time.time() + 3600
    assert not verify_signature("shared-secret", request.headers, request.body, now=stale)
    timestamp = int(request.headers[TIMESTAMP_HEADER])
    assert request.headers[SIGNATURE_HEADER] == sign("shared-secret", timestamp, request.body)
    (delivered,) = log.of(WebhookDelivered)
    assert isinstance(delivered, WebhookDelivered) and delivered.attempts == 1


def test_retries_with_exponential_backoff(box: SecretBox) -> None:
    sleep = SleepRecorder()
    log = EventLog()
    with HttpReceiver([503, 500, 429, 200]) as receiver:
        config = WebhookOutput(
            id="hook",
            url=receiver.url,
            retry=RetryPolicy(max_attempts=6, initial_s=0.5, factor=2.0, jitter=0.0),
        )
        run_outputs([config], [notice()], OutputContext(audit=log, sleep=sleep))
    assert [r.status for r in receiver.requests] == [503, 500, 429, 200]
    assert sleep.delays == [0.5, 1.0, 2.0]
    ids = {r.headers[DELIVERY_HEADER] for r in receiver.requests}
    assert len(ids) == 1  # the same delivery id on every try
    (delivered,) = log.of(WebhookDelivered)
    assert isinstance(delivered, WebhookDelivered) and delivered.attempts == 4


def test_retry_after_and_cap() -> None:
    sleep = SleepRecorder()
    with HttpReceiver([429, 200], retry_after="7") as receiver:
        config = WebhookOutput(
            id="hook",
            url=receiver.url,
            retry=RetryPolicy(initial_s=0.1, jitter=0.0, max_s=5.0),
        )
        run_outputs([config], [notice()], OutputContext(sleep=sleep))
    assert sleep.delays == [5.0]  # Retry-After honoured, capped at max_s
    policy = RetryPolicy(initial_s=1.0, factor=3.0, max_s=10.0, jitter=0.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1.0, 3.0, 9.0, 10.0]
    jittery = RetryPolicy(initial_s=1.0, jitter=0.2)
    assert all(0.8 <= jittery.delay(1) <= 1.2 for _ in range(50))


def test_dead_letter_after_max_attempts_and_on_refusal(tmp_path: Path) -> None:
    sleep = SleepRecorder()
    log = EventLog()
    store = JsonlDeadLetters(tmp_path / "dead.jsonl")
    with HttpReceiver([500]) as failing, HttpReceiver([410]) as gone:
        configs: list[object] = [
            WebhookOutput(
                id="down",
                url=failing.url,
                retry=RetryPolicy(max_attempts=3, initial_s=1.0, jitter=0.0),
            ),
            WebhookOutput(id="gone", url=gone.url, retry=RetryPolicy(max_attempts=5)),
        ]
        run_outputs(configs, [notice()], OutputContext(audit=log, dead_letters=store, sleep=sleep))
    assert len(failing.requests) == 3 and sleep.delays.count(1.0) == 1
    assert len(gone.requests) == 1  # 410 is final: no retry
    letters = {letter.output_id: letter for letter in store.list()}
    assert letters["down"].attempts == 3 and letters["down"].last_error == "HTTP 500"
    assert letters["gone"].attempts == 1 and letters["gone"].last_error == "HTTP 410"
    assert json.loads(letters["down"].body)["incident"]["id"] == "inc-1"
    assert len(log.of(WebhookDeadLettered)) == 2


def test_unreachable_receiver_is_dead_lettered() -> None:
    sleep = SleepRecorder()
    store = MemoryDeadLetters()
    with HttpReceiver() as receiver:
        url = receiver.url
    config = WebhookOutput(id="hook", url=url, retry=RetryPolicy(max_attempts=2, jitter=0.0))
    run_outputs([config], [notice()], OutputContext(dead_letters=store, sleep=sleep))
    (letter,) = store.list()
    assert letter.last_error == "ConnectError" and letter.attempts == 2


def test_filters() -> None:
    f = WebhookFilter(labels=[EventLabel.GUNSHOT], sites=["saint-etienne"], min_score=0.8)
    assert matches(f, notice(max_score=0.9))
    assert not matches(f, notice(max_score=0.5))
    assert not matches(f, notice(max_score=None))
    assert not matches(f, notice(max_score=0.9, label=EventLabel.SIREN))
    assert not matches(f, notice(max_score=0.9, site="lyon"))
    assert not matches(f, notice("updated", max_score=0.9))
    with HttpReceiver() as receiver:
        config = WebhookOutput(id="h", url=receiver.url, filter=WebhookFilter(labels=["scream"]))
        run_outputs([config], [notice(), notice(label=EventLabel.SCREAM)], OutputContext())
        assert receiver.wait_for(1)
    assert [json.loads(r.body)["incident"]["label"] for r in receiver.requests] == ["scream"]


# -- CAP ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cap_schema():  # type: ignore[no-untyped-def]
    etree = require_module("lxml.etree", "CAP schema validation needs lxml (test extra)")
    return etree.XMLSchema(etree.parse(str(CAP_XSD)))


def _validate(schema, document: bytes) -> None:  # type: ignore[no-untyped-def]
    from lxml import etree

    doc = etree.fromstring(document)
    assert schema.validate(doc), schema.error_log


@pytest.mark.parametrize("label", list(EventLabel))
def test_cap_alert_for_every_label_is_valid(cap_schema, label: EventLabel) -> None:  # type: ignore[no-untyped-def]
    config = CapOutput(sender="ouie@saint-etienne.example", web_base_url="https://hub.example/")
    document = render_cap(incident_at(*ORIGIN, label=label), config)
    _validate(cap_schema, document)
    text = document.decode()
    assert "<sent>" in text and "-00:00</sent>" in text and "Z</" not in text
    assert "<circle>45.439700,4.387200 0.010</circle>" in text
    assert "<web>https://hub.example/incidents/inc-1</web>" in text


def test_cap_says_how_many_rounds_and_when_it_is_only_an_area(cap_schema) -> None:  # type: ignore[no-untyped-def]
    area = incident_at(*ORIGIN, radius_m=140.0).model_copy(
        update={"approximate": True, "rounds": 4}
    )
    document = render_cap(area, CapOutput())
    _validate(cap_schema, document)
    text = document.decode()
    assert "(4 rounds)" in text and "approximate area of 140 m radius" in text
    assert "<value>true</value>" in text  # ouie:approximate
    exact = render_cap(incident_at(*ORIGIN), CapOutput()).decode()
    assert "location within 10 m (95 %)" in exact and "approximate area" not in exact


def test_cap_history_updates_and_cancel(cap_schema) -> None:  # type: ignore[no-untyped-def]
    config = CapOutput(scope="Public")
    ctx = OutputContext()
    action = CapAction(config, ctx)
    base = incident_at(*ORIGIN, sensor_count=1)

    async def go() -> None:
        await action.on_incident(IncidentNotice(change="created", incident=base))
        await action.on_incident(
            IncidentNotice(
                change="state_changed", incident=base.model_copy(update={"state": "confirmed"})
            )
        )
        await action.on_incident(
            IncidentNotice(
                change="state_changed", incident=base.model_copy(update={"state": "dismissed"})
            )
        )
        await action.close()

    asyncio.run(go())
    documents = [doc for _, _, doc in action.history["inc-1"]]
    for document in documents:
        _validate(cap_schema, document)
    first, update, cancel = (d.decode() for d in documents)
    assert "<msgType>Alert</msgType>" in first and "<certainty>Possible</certainty>" in first
    assert "<restriction>" not in first
    assert "<msgType>Update</msgType>" in update and "<certainty>Observed</certainty>" in update
    assert "<msgType>Cancel</msgType>" in cancel and "<references>" in cancel
    ident = action.history["inc-1"][0][0]
    assert f"ouie@localhost,{ident}," in cancel
    assert action.latest("inc-1") == documents[-1]


def test_cap_schema_rejects_a_broken_alert(cap_schema) -> None:  # type: ignore[no-untyped-def]
    document = render_cap(incident_at(*ORIGIN), CapOutput()).decode()
    from lxml import etree

    bad_time = document.replace("-00:00</sent>", "Z</sent>", 1)
    assert not cap_schema.validate(etree.fromstring(bad_time.encode()))
    bad_enum = document.replace("<status>Actual</status>", "<status>Real</status>")
    assert not cap_schema.validate(etree.fromstring(bad_enum.encode()))


def test_cap_time_form() -> None:
    when = incident_at(*ORIGIN).time + timedelta(microseconds=123)
    assert cap_time(when) == "2026-06-21T12:00:00-00:00"


def test_cap_pushed_to_url() -> None:
    with HttpReceiver() as receiver:
        run_outputs([CapOutput(url=receiver.url + "/cap")], [notice()], OutputContext())
        assert receiver.wait_for(1)
    assert receiver.requests[0].headers["Content-Type"].startswith("application/cap+xml")
    assert b"urn:oasis:names:tc:emergency:cap:1.2" in receiver.requests[0].body


# -- VMS ----------------------------------------------------------------------------------


def test_vms_bookmark_after_a_cue() -> None:
    log = EventLog()
    incident = incident_at(*ORIGIN)
    cue = CueResult(
        incident_id="inc-1",
        camera_id="cam-hdv",
        method="absolute",
        pan=0.1,
        tilt=-0.2,
        zoom=0.3,
        bearing_deg=10.0,
        tilt_deg=-5.0,
        distance_m=100.0,
        command_ms=5.0,
    )
    with HttpReceiver() as receiver:
        config = VmsWebhookOutput(
            id="vms",
            url=receiver.url + "/bookmarks",
            pre_s=20.0,
            post_s=60.0,
            camera_map={"cam-hdv": "VMS-CAM-0042"},
        )
        outputs = Outputs([config], OutputContext(audit=log))

        async def go() -> None:
            await outputs.on_incident(notice())  # not a cue: nothing sent
            await outputs.on_cue(incident, cue, "operator-1")
            await outputs.close()

        asyncio.run(go())
    (request,) = receiver.requests
    body = json.loads(request.body)
    assert body == {
        "incident_id": "inc-1",
        "camera_id": "VMS-CAM-0042",
        "ouie_camera_id": "cam-hdv",
        "start": "2026-06-21T11:59:40+00:00",
        "end": "2026-06-21T12:01:00+00:00",
        "label": "gunshot",
        "lat": ORIGIN[0],
        "lon": ORIGIN[1],
    }
    (sent,) = log.of(VmsBookmarkSent)
    assert isinstance(sent, VmsBookmarkSent) and sent.delivered and sent.actor == "operator-1"


def test_incident_ref_from_a_hub_row() -> None:
    class Row:
        id = "abc"
        site = "saint-etienne"
        label = "scream"
        lat = 45.0
        lon = 4.0
        radius_m = 12.0
        ellipse_major_m = 20.0
        first_onset = incident_at(*ORIGIN).time
        state = "acknowledged"
        max_score = 0.87
        sensor_count = 3

    ref = IncidentRef.from_record(Row())
    assert ref.label is EventLabel.SCREAM and ref.radius_m == 20.0 and ref.sensor_count == 3


# -- the shared delivery base -------------------------------------------------------------


def test_every_posting_output_dead_letters_the_same_way() -> None:
    """Webhook, CAP and VMS deliveries go through one base: a final refusal becomes a dead
    letter named after the output and its event, and ``close`` drains first."""
    store = MemoryDeadLetters()
    incident = incident_at(*ORIGIN)
    cue = CueResult(
        incident_id="inc-1",
        camera_id="cam-hdv",
        method="absolute",
        bearing_deg=10.0,
        tilt_deg=-5.0,
        distance_m=100.0,
        command_ms=5.0,
    )
    with HttpReceiver([404, 404, 404]) as refusing:
        once = RetryPolicy(max_attempts=1)
        outputs = Outputs(
            [
                WebhookOutput(id="hook", url=refusing.url, retry=once),
                CapOutput(id="cap", url=refusing.url + "/cap", retry=once),
                VmsWebhookOutput(id="vms", url=refusing.url + "/bookmarks", retry=once),
            ],
            OutputContext(dead_letters=store),
        )

        async def go() -> None:
            await outputs.on_incident(notice())
            await outputs.on_cue(incident, cue, "operator-1")
            await outputs.close()

        asyncio.run(go())
    letters = {letter.output_id: letter for letter in store.list()}
    assert {k: (v.event, v.last_error) for k, v in letters.items()} == {
        "hook": ("incident.created", "HTTP 404"),
        "cap": ("cap", "HTTP 404"),
        "vms": ("vms.bookmark", "HTTP 404"),
    }
    assert all(letter.incident_id == "inc-1" for letter in letters.values())


def test_a_cap_output_without_url_opens_no_client() -> None:
    opened: list[str] = []

    def client() -> httpx.AsyncClient:
        opened.append("client")
        return httpx.AsyncClient()

    action = CapAction(CapOutput(), OutputContext(http_client=client))
    asyncio.run(action.on_incident(notice()))
    asyncio.run(action.close())
    assert opened == [] and action.latest("inc-1") is not None
