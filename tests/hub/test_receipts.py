"""The hub's receipts: which committed messages get an ``AckMessage`` back, and when."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ouie.core.messages import AckMessage, topic_for
from ouie.core.timebase import utc_now
from ouie.hub.db import Detection
from ouie.hub.ingest import Envelope
from ouie.hub.mqtt import CONFIRMED_REJECTIONS, receipt_for
from ouie.hub.service import Hub
from ouie.transport.base import encode
from tests.hub.helpers import SITE, events_for_source, register_sensors, sensor_grid

TOPIC = topic_for(SITE, "s1", "events")
MESSAGE_ID = "0123456789abcdef0123456789abcdef"
PAYLOAD = json.dumps({"kind": "event", "message_id": MESSAGE_ID}).encode()


def _receipt(outcome: str, topic: str = TOPIC, payload: bytes = PAYLOAD) -> AckMessage | None:
    made = receipt_for(topic, payload, outcome)
    if made is None:
        return None
    ack_topic, body = made
    assert ack_topic == topic_for(SITE, "s1", "ack")
    return AckMessage.model_validate_json(body)


@pytest.mark.parametrize(
    ("outcome", "verdict"), [("accepted", "stored"), ("duplicate", "duplicate")]
)
def test_stored_and_duplicate_messages_are_confirmed(outcome: str, verdict: str) -> None:
    receipt = _receipt(outcome)
    assert receipt is not None
    assert (receipt.site, receipt.sensor_id, receipt.message_id) == (SITE, "s1", MESSAGE_ID)
    assert (receipt.outcome, receipt.reason) == (verdict, "")


@pytest.mark.parametrize("reason", sorted(CONFIRMED_REJECTIONS))
def test_refusals_for_the_content_are_confirmed_with_their_reason(reason: str) -> None:
    receipt = _receipt(f"rejected:{reason}")
    assert receipt is not None and (receipt.outcome, receipt.reason) == ("rejected", reason)


@pytest.mark.parametrize(
    "reason", ["topic_mismatch", "wrong_sensor", "unknown_sensor", "bad_signature", "unsigned"]
)
def test_refusals_that_may_not_come_from_the_sensor_get_no_receipt(reason: str) -> None:
    # a receipt would let a forger empty another sensor's spool, and an unregistered
    # sensor's node keeps its messages until it is registered
    assert _receipt(f"rejected:{reason}") is None


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("ouie/v1/testsite/s1/config", PAYLOAD),  # not a node → hub topic
        ("ouie/v1/testsite/events", PAYLOAD),
        ("ouie/v1/bad site/s1/events", PAYLOAD),  # not a valid sensor name
        (TOPIC, b"{not json"),
        (TOPIC, b"[1, 2]"),
        (TOPIC, json.dumps({"message_id": "short"}).encode()),
        (TOPIC, json.dumps({"kind": "event"}).encode()),
    ],
)
def test_nothing_to_name_no_receipt(topic: str, payload: bytes) -> None:
    assert receipt_for(topic, payload, "rejected:invalid") is None


def test_receipts_follow_the_commit_in_order(hub: Hub) -> None:
    """``Envelope.confirm`` is called once per message with its outcome, in the order
    received, and only once the message is in the database."""
    layout = sensor_grid(4)
    register_sensors(hub, layout)
    events = events_for_source(layout, 5.0, 5.0, utc_now() - timedelta(minutes=1))
    seen: list[tuple[str, str, int]] = []

    def confirmer(message_id: str) -> Callable[[str], None]:
        def confirm(outcome: str) -> None:
            with hub.sessions() as session:
                stored = session.execute(
                    select(func.count())
                    .select_from(Detection)
                    .where(Detection.message_id == message_id)
                ).scalar_one()
            seen.append((message_id, outcome, int(stored)))

        return confirm

    envelopes = [
        Envelope(
            "mqtt",
            topic_for(SITE, m.sensor_id, "events"),
            encode(m),
            confirm=confirmer(m.message_id),
        )
        for m in [*events, events[0]]  # the last one is a resend
    ]

    async def scenario() -> None:
        await hub.start()
        try:
            for envelope in envelopes:
                await hub.submit(envelope)
            await hub.drain()
        finally:
            await hub.stop()

    asyncio.run(scenario())
    ids = [m.message_id for m in events]
    assert seen == [(i, "accepted", 1) for i in ids] + [(ids[0], "duplicate", 1)]
