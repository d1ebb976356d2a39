"""The MQTT publisher against a real Mosquitto: QoS 1, config, and store-and-forward."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest

from ouie.config.node import MqttSettings, NodeSettings
from ouie.core.labels import EventLabel
from ouie.core.messages import EventMessage, StatusMessage, ThresholdConfigMessage, topic_for
from ouie.hub.mqtt import receipt_for
from ouie.node.runtime import NodeRuntime
from ouie.node.sources import AudioChunk, AudioSource
from ouie.transport.mqtt import MqttPublisher
from ouie.transport.spool import Spool
from tests.integration.mosquitto import Mosquitto
from tests.node.fakes import LoudnessClassifier
from tests.transport.messages import event, status

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path / "broker")
    mosquitto.start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()


class Collector:
    """A durable subscriber (persistent session, QoS 1) that reconnects after outages and,
    like the hub, sends a receipt for each message (the node keeps it until then)."""

    def __init__(
        self,
        port: int,
        topic_filter: str,
        client_id: str = "test-collector",
        receipts: bool = True,
    ) -> None:
        self.port = port
        self.topic_filter = topic_filter
        self.client_id = client_id
        self.receipts = receipts
        #: event sequence numbers to drop on first arrival, as a broker that lost them would
        self.lose_once: set[int] = set()
        self.messages: list[tuple[str, bytes]] = []
        self.subscribed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1", self.port, identifier=self.client_id, clean_session=False
                ) as client:
                    await client.subscribe(self.topic_filter, qos=1)
                    self.subscribed.set()
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        topic = str(message.topic)
                        if topic.endswith("/ack") or self._lost(topic, message.payload):
                            continue
                        self.messages.append((topic, message.payload))
                        receipt = receipt_for(topic, message.payload, "accepted")
                        if self.receipts and receipt is not None:
                            # Not awaited here: a publish failing on a lost connection would
                            # end this loop before it took the messages already received.
                            self._send(client.publish(*receipt, qos=1))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)

    def _lost(self, topic: str, payload: bytes) -> bool:
        if not topic.endswith("/events") or not self.lose_once:
            return False
        sequence = EventMessage.model_validate_json(payload).sequence
        if sequence in self.lose_once:
            self.lose_once.discard(sequence)
            return True
        return False

    def _send(self, publish: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(publish)
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if not task.cancelled():
            task.exception()  # a receipt lost with the connection: the node resends

    async def __aenter__(self) -> Collector:
        self.task = asyncio.create_task(self.run())
        await asyncio.wait_for(self.subscribed.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def wait_for(self, predicate: object, timeout: float) -> None:
        assert callable(predicate)
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out; collected {len(self.messages)} messages")
            await asyncio.sleep(0.05)


def event_sequences(messages: list[tuple[str, bytes]]) -> list[int]:
    """Sequence numbers in arrival order, duplicates (at-least-once redelivery) removed."""
    seen: set[str] = set()
    order: list[int] = []
    for topic, payload in messages:
        if not topic.endswith("/events"):
            continue
        message = EventMessage.model_validate_json(payload)
        if message.message_id not in seen:
            seen.add(message.message_id)
            order.append(message.sequence)
    return order


def publisher_for(broker: Mosquitto, tmp_path: Path, **kwargs: object) -> MqttPublisher:
    return MqttPublisher(
        MqttSettings(url=broker.url, client_id="ouie-test-node", keepalive_s=5),
        Spool(tmp_path / "spool.sqlite3", max_events=10_000),
        "s1",
        "n1",
        reconnect_min_s=0.05,
        reconnect_max_s=0.3,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("outage_s", [0.0, 1.0])
def test_broker_restart_mid_stream_loses_no_event_and_keeps_order(
    broker: Mosquitto, tmp_path: Path, outage_s: float
) -> None:
    total, stop_at, restart_at = 300, 100, 200

    async def main() -> None:
        async with Collector(broker.port, "ouie/v1/s1/n1/#") as collector:
            publisher = publisher_for(broker, tmp_path)
            await publisher.start()
            await asyncio.wait_for(publisher.connected.wait(), 10)
            peak_spooled = 0
            for i in range(total):
                if i == stop_at:
                    await asyncio.to_thread(broker.stop, signal.SIGTERM)
                    await asyncio.sleep(outage_s)
                if i == restart_at:
                    await asyncio.to_thread(broker.start)
                await publisher.publish_event(event(i))
                if i % 25 == 0:
                    await publisher.publish_status(status(i))
                peak_spooled = max(peak_spooled, publisher.spooled_events)
                await asyncio.sleep(0.002)
            assert peak_spooled >= restart_at - stop_at  # the outage really was spooled
            assert await publisher.flush(20), "spool did not drain after the broker came back"
            assert publisher.spooled_events == 0
            assert publisher.connections >= 2
            await collector.wait_for(
                lambda: len(set(event_sequences(collector.messages))) >= total, 20
            )
            await publisher.close()
            order = event_sequences(collector.messages)
            assert order == list(range(total)), "events lost or reordered"
            statuses = [p for t, p in collector.messages if t.endswith("/status")]
            assert all(StatusMessage.model_validate_json(p).kind == "status" for p in statuses)

    asyncio.run(main())


def test_spool_survives_node_restart_while_broker_is_down(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async def main() -> None:
        async with Collector(broker.port, "ouie/v1/s1/n1/events") as collector:
            await asyncio.to_thread(broker.stop)
            first = publisher_for(broker, tmp_path, close_timeout_s=0.5)
            await first.start()
            for i in range(20):
                await first.publish_event(event(i))
            await first.close()  # node stops with the broker still down
            await asyncio.to_thread(broker.start)
            second = publisher_for(broker, tmp_path)
            assert second.spooled_events == 20
            assert second.next_sequence() == 20  # a restarted node continues the counter
            await second.start()
            await second.publish_event(event(20))
            assert await second.flush(20)
            await collector.wait_for(lambda: len(event_sequences(collector.messages)) >= 21, 20)
            await second.close()
            assert event_sequences(collector.messages) == list(range(21))

    asyncio.run(main())


def test_retained_config_reaches_the_node(broker: Mosquitto, tmp_path: Path) -> None:
    configs: list[ThresholdConfigMessage] = []
    config = ThresholdConfigMessage(
        site="s1",
        sensor_id="n1",
        issued_at=datetime(2026, 1, 1, tzinfo=UTC),
        thresholds={EventLabel.SIREN: 0.8, EventLabel.GUNSHOT: 0.6},
    )

    async def main() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port) as hub:
            # published (retained) before the node exists: the node still gets it
            await hub.publish(
                topic_for("s1", "n1", "config"), config.model_dump_json(), qos=1, retain=True
            )
            publisher = publisher_for(broker, tmp_path, on_config=configs.append)
            await publisher.start()
            for _ in range(200):
                if configs:
                    break
                await asyncio.sleep(0.05)
            assert configs == [config]
            # an update while connected, and garbage that must be ignored
            await hub.publish(topic_for("s1", "n1", "config"), b"{oops", qos=1)
            newer = config.model_copy(update={"thresholds": {EventLabel.SIREN: 0.9}})
            await hub.publish(
                topic_for("s1", "n1", "config"), newer.model_dump_json(), qos=1, retain=True
            )
            for _ in range(200):
                if len(configs) == 2:
                    break
                await asyncio.sleep(0.05)
            assert configs == [config, newer]
            assert publisher.connected.is_set()  # bad payloads did not cost the connection
            await publisher.close()
            await hub.publish(topic_for("s1", "n1", "config"), b"", qos=1, retain=True)

    asyncio.run(main())


def _bangs(onsets_s: list[float], duration_s: float, rate: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal(int(duration_s * rate)) * 0.003).astype(np.float32)
    for onset in onsets_s:
        start, n = int(onset * rate), int(0.08 * rate)
        decay = np.exp(-np.arange(n) / (0.01 * rate)).astype(np.float32)
        audio[start : start + n] += 0.8 * decay * rng.standard_normal(n).astype(np.float32)
    return audio


def test_node_runtime_publishes_events_and_status_over_mqtt(
    broker: Mosquitto, tmp_path: Path
) -> None:
    rate = 16000
    audio = _bangs([1.0, 3.5], 5.0, rate)
    origin = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    async def chunks() -> AsyncIterator[AudioChunk]:
        for start in range(0, audio.size, 1600):
            yield AudioChunk(audio[start : start + 1600])
            await asyncio.sleep(0)

    settings = NodeSettings.model_validate(
        {
            "site": "s1",
            "sensor_id": "n1",
            "calibration_db_spl": 94.0,
            "events": {"merge_gap_s": 0.5},
            "publish": {
                "kind": "mqtt",
                "mqtt": {"url": broker.url},
                "spool": {"path": str(tmp_path / "node-spool.sqlite3")},
                "status_interval_s": 0.05,
            },
        }
    )

    async def main() -> None:
        async with Collector(broker.port, "ouie/v1/s1/n1/+") as collector:
            runtime = NodeRuntime(
                settings,
                classifier=LoudnessClassifier(),
                source=AudioSource(rate, chunks()),
                clock_origin=origin,
                handle_signals=False,
            )
            summary = await runtime.run()
            assert summary.events_published == 2
            await collector.wait_for(lambda: len(event_sequences(collector.messages)) >= 2, 10)
        events = [
            EventMessage.model_validate_json(p) for t, p in collector.messages if "/events" in t
        ]
        assert [e.sequence for e in events] == [0, 1]
        for message, truth in zip(events, [1.0, 3.5], strict=True):
            assert abs((message.onset - origin).total_seconds() - truth) < 0.01
            assert message.level_db_spl == pytest.approx(message.level_dbfs + 94.0)
            assert message.model_id == "test-loudness"
        statuses = [
            StatusMessage.model_validate_json(p) for t, p in collector.messages if "/status" in t
        ]
        assert statuses and statuses[-1].events_emitted == 2

    asyncio.run(main())


def test_a_message_the_broker_lost_while_connected_is_sent_again(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """The hub confirms shots 6.. but never saw 5 (as when a broker drops a queued message):
    after ``resend_after_s`` the node sends the unconfirmed again, and nothing is lost."""

    async def main() -> None:
        async with Collector(broker.port, "ouie/v1/s1/n1/#") as collector:
            collector.lose_once = {5}
            publisher = MqttPublisher(
                MqttSettings(url=broker.url, client_id="ouie-test-node", resend_after_s=0.3),
                Spool(tmp_path / "spool.sqlite3"),
                "s1",
                "n1",
            )
            await publisher.start()
            for i in range(12):
                await publisher.publish_event(event(i))
            assert await publisher.flush(10), f"{publisher.spooled_events} never confirmed"
            assert publisher.resends == 1 and publisher.connections == 1
            assert publisher.confirmed == 12
            await publisher.close()
            assert sorted(set(event_sequences(collector.messages))) == list(range(12))

    asyncio.run(main())


def test_without_receipts_the_node_keeps_its_messages(broker: Mosquitto, tmp_path: Path) -> None:
    """The broker acknowledged every message, but no hub confirmed one: all stay spooled
    (and ``keep_until: puback`` restores the old behaviour for other consumers)."""

    async def main() -> None:
        async with Collector(broker.port, "ouie/v1/s1/n1/#", receipts=False) as collector:
            for keep_until, left in (("stored", 5), ("puback", 0)):
                publisher = MqttPublisher(
                    MqttSettings(url=broker.url, keep_until=keep_until),  # type: ignore[arg-type]
                    Spool(tmp_path / f"{keep_until}.sqlite3"),
                    "s1",
                    "n1",
                    close_timeout_s=0.5,
                )
                await publisher.start()
                for i in range(5):
                    await publisher.publish_event(event(i))
                await collector.wait_for(lambda: len(event_sequences(collector.messages)) >= 5, 10)
                await asyncio.sleep(0.2)
                assert publisher.delivered >= 5  # the broker has them all
                assert publisher.spooled_events == left
                await publisher.close()
                collector.messages.clear()

    asyncio.run(main())


def test_onset_requests_reach_the_node_and_answers_reach_the_hub(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """Through Mosquitto: the hub's request on ``.../onset-request`` reaches the node's
    handler (garbage and another sensor's requests do not), and an answer goes straight out
    on ``.../onsets`` (not through the spool); offline, it is dropped and counted."""
    from datetime import timedelta

    from ouie.core.messages import ImpulseOnsetMessage, OnsetRequestMessage

    requests: list[OnsetRequestMessage] = []
    now = datetime(2026, 1, 1, tzinfo=UTC)
    request = OnsetRequestMessage(
        site="s1",
        sensor_id="n1",
        issued_at=now,
        start=now,
        end=now + timedelta(seconds=1),
    )
    answer = ImpulseOnsetMessage(
        request_id=request.request_id,
        site="s1",
        sensor_id="n1",
        sent_at=now,
        index=0,
        count=1,
        onset=now + timedelta(seconds=0.4),
        level_dbfs=-31.0,
        prominence_db=24.0,
    )

    async def main() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port) as hub:
            await hub.subscribe(topic_for("s1", "n1", "onsets"), qos=1)
            publisher = publisher_for(broker, tmp_path, on_onset_request=requests.append)
            await publisher.start()
            await asyncio.wait_for(publisher.connected.wait(), 10)
            await asyncio.sleep(0.2)  # its subscriptions
            await hub.publish(topic_for("s1", "n1", "onset-request"), b"{oops", qos=1)
            other = request.model_copy(update={"sensor_id": "n2"})
            await hub.publish(topic_for("s1", "n1", "onset-request"), other.model_dump_json())
            await hub.publish(topic_for("s1", "n1", "onset-request"), request.model_dump_json())
            for _ in range(200):
                if requests:
                    break
                await asyncio.sleep(0.05)
            assert requests == [request]
            await publisher.publish_onset(answer)
            received = await asyncio.wait_for(anext(aiter(hub.messages)), 10)
            assert isinstance(received.payload, bytes)
            assert ImpulseOnsetMessage.model_validate_json(received.payload) == answer
            assert len(publisher.spool) == 0  # never spooled
            await publisher.close()

    asyncio.run(main())
    offline = publisher_for(broker, tmp_path / "off")

    async def dropped() -> int:
        await offline.publish_onset(answer)  # never started: no connection
        await offline.close()
        return offline.onsets_dropped

    assert asyncio.run(dropped()) == 1
