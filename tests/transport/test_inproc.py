from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from ouie.core.labels import EventLabel
from ouie.core.messages import EventMessage, ThresholdConfigMessage, topic_for
from ouie.transport.base import Publisher
from ouie.transport.inproc import (
    BusMessage,
    InProcBus,
    InProcPublisher,
    Subscription,
    topic_matches,
    validate_filter,
    validate_topic,
)
from tests.transport.messages import event, status


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("ouie/v1/s/n/events", "ouie/v1/s/n/events", True),
        ("ouie/v1/s/n/events", "ouie/v1/s/n/status", False),
        ("ouie/v1/+/+/events", "ouie/v1/s/n/events", True),
        ("ouie/v1/+/+/events", "ouie/v1/s/n/x/events", False),
        ("ouie/v1/+/n/+", "ouie/v1/s/n/status", True),
        ("ouie/v1/#", "ouie/v1/s/n/events", True),
        ("ouie/v1/#", "ouie/v1", True),  # '#' also matches the parent level
        ("ouie/v1/#", "ouie/v2/s", False),
        ("#", "ouie/v1/s/n/events", True),
        ("+", "ouie", True),
        ("+", "ouie/v1", False),
        ("+/+", "/x", True),  # an empty level is a level
        ("ouie/+", "ouie/", True),
        ("ouie/v1/s/n", "ouie/v1/s/n/events", False),
        ("ouie/v1/s/n/events/x", "ouie/v1/s/n/events", False),
        ("#", "$SYS/broker/uptime", False),  # wildcards never match $ topics at level 1
        ("+/broker/uptime", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
    ],
)
def test_topic_matching(topic_filter: str, topic: str, expected: bool) -> None:
    validate_filter(topic_filter)
    assert topic_matches(topic_filter, topic) is expected


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b#", "a/+b", "a+/b", "#/a"])
def test_invalid_filters_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        validate_filter(bad)


@pytest.mark.parametrize("bad", ["", "a/+", "a/#", "+"])
def test_invalid_publish_topics_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        validate_topic(bad)


def test_bus_delivers_by_filter_in_order_and_unsubscribes() -> None:
    async def main() -> None:
        bus = InProcBus()
        everything = bus.subscribe("ouie/v1/#")
        events_only = bus.subscribe("ouie/v1/+/+/events")
        one_sensor = bus.subscribe("ouie/v1/s1/n2/+")
        for i in range(3):
            await bus.publish(f"ouie/v1/s1/n{i}/events", f"e{i}".encode())
            await bus.publish(f"ouie/v1/s1/n{i}/status", f"s{i}".encode())
        got = [(await everything.get()).payload for _ in range(6)]
        assert got == [b"e0", b"s0", b"e1", b"s1", b"e2", b"s2"]
        assert [m.payload async for m in _take(events_only, 3)] == [b"e0", b"e1", b"e2"]
        assert [(await one_sensor.get()).topic for _ in range(2)] == [
            "ouie/v1/s1/n2/events",
            "ouie/v1/s1/n2/status",
        ]
        assert one_sensor.get_nowait() is None
        with one_sensor:
            pass  # leaving the block unsubscribes
        assert bus.subscriber_count == 2
        await bus.publish("ouie/v1/s1/n2/events", b"late")
        assert one_sensor.pending() == 0
        assert everything.pending() == 1

    asyncio.run(main())


async def _take(subscription: Subscription, n: int) -> AsyncIterator[BusMessage]:
    async for message in subscription:
        yield message
        n -= 1
        if n == 0:
            return


def test_retained_messages_reach_late_subscribers_and_can_be_cleared() -> None:
    async def main() -> None:
        bus = InProcBus()
        await bus.publish("ouie/v1/s/a/config", b"cfg-a", retain=True)
        await bus.publish("ouie/v1/s/b/config", b"cfg-b1", retain=True)
        await bus.publish("ouie/v1/s/b/config", b"cfg-b2", retain=True)
        await bus.publish("ouie/v1/s/b/events", b"not retained")
        late = bus.subscribe("ouie/v1/s/+/config")
        got = sorted([(await late.get()).payload, (await late.get()).payload])
        assert got == [b"cfg-a", b"cfg-b2"]
        assert late.get_nowait() is None
        await bus.publish("ouie/v1/s/a/config", b"", retain=True)  # clear
        assert bus.retained("ouie/v1/s/a/config") is None
        assert bus.retained("ouie/v1/s/b/config") == b"cfg-b2"
        assert bus.subscribe("ouie/v1/s/a/config").get_nowait() is None

    asyncio.run(main())


def test_slow_subscriber_loses_oldest_and_counts_it() -> None:
    async def main() -> None:
        bus = InProcBus(max_queue=3)
        slow = bus.subscribe("t/#")
        for i in range(5):
            bus.publish_nowait("t/x", str(i).encode())
        assert slow.dropped == 2
        assert [(await slow.get()).payload for _ in range(3)] == [b"2", b"3", b"4"]

    asyncio.run(main())


def test_publisher_uses_node_topics_and_follows_config() -> None:
    received: list[ThresholdConfigMessage] = []

    async def main() -> None:
        bus = InProcBus()
        hub = bus.subscribe("ouie/v1/+/+/+")
        publisher = InProcPublisher(bus, "s1", "n1", on_config=received.append)
        assert isinstance(publisher, Publisher)
        await publisher.start()
        await publisher.publish_event(event(7))
        await publisher.publish_status(status())
        first, second = await hub.get(), await hub.get()
        assert first.topic == topic_for("s1", "n1", "events")
        assert EventMessage.model_validate_json(first.payload).sequence == 7
        assert second.topic == topic_for("s1", "n1", "status")
        config = ThresholdConfigMessage(
            site="s1",
            sensor_id="n1",
            issued_at=datetime(2026, 1, 1, tzinfo=UTC),
            thresholds={EventLabel.SIREN: 0.8},
        )
        other = config.model_copy(update={"sensor_id": "n2"})
        await bus.publish(topic_for("s1", "n1", "config"), b"{not json", retain=True)
        await bus.publish(topic_for("s1", "n1", "config"), other.model_dump_json().encode())
        await bus.publish(
            topic_for("s1", "n1", "config"), config.model_dump_json().encode(), retain=True
        )
        for _ in range(10):
            await asyncio.sleep(0)
        assert received == [config]
        await publisher.close()
        assert bus.subscriber_count == 1  # only the hub's subscription is left
        assert publisher.spooled_events == 0
        assert json.loads(bus.retained(topic_for("s1", "n1", "config")) or b"")["kind"] == "config"

    asyncio.run(main())
