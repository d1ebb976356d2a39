"""The MQTT incident topic against a private Mosquitto broker on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from ouie.verify.events import AlertPublished, EventLog
from ouie.verify.incident import IncidentNotice
from ouie.verify.mqtt import MqttAction, MqttOutput, incidents_topic
from ouie.verify.plugin import OutputContext
from tests.integration.mosquitto import Mosquitto
from tests.verify.conftest import ORIGIN, incident_at

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path / "mosquitto")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_incidents_are_published_on_the_site_topic(broker: Mosquitto) -> None:
    log = EventLog()
    received: list[tuple[str, dict[str, object]]] = []

    async def go() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="integrator") as sub:
            await sub.subscribe("ouie/v1/+/incidents", qos=1)
            action = MqttAction(
                MqttOutput(url=broker.url, client_id="ouie-test-out"), OutputContext(audit=log)
            )
            first = incident_at(*ORIGIN)
            await action.on_incident(IncidentNotice(change="created", incident=first))
            second = first.model_copy(update={"state": "confirmed"})
            await action.on_incident(IncidentNotice(change="state_changed", incident=second))
            await asyncio.wait_for(action.drain(), 10.0)

            async def collect() -> None:
                async for message in sub.messages:
                    assert isinstance(message.payload, bytes)
                    received.append((str(message.topic), json.loads(message.payload)))
                    if len(received) == 2:
                        return

            await asyncio.wait_for(collect(), 10.0)
            await action.close()

    asyncio.run(go())
    assert [topic for topic, _ in received] == [incidents_topic("saint-etienne")] * 2
    assert received[0][1]["change"] == "created"
    assert received[1][1]["incident"]["state"] == "confirmed"  # type: ignore[index]
    assert received[0][1]["schema_version"] == 1
    assert len(log.of(AlertPublished)) == 2


def test_messages_wait_for_the_broker(tmp_path: Path) -> None:
    server = Mosquitto(tmp_path / "late")
    action = MqttAction(MqttOutput(url=server.url, client_id="ouie-test-late"), OutputContext())

    async def go() -> None:
        await action.on_incident(IncidentNotice(change="created", incident=incident_at(*ORIGIN)))
        await asyncio.sleep(0.5)
        assert action.published == 0 and action.queue.qsize() == 1
        server.start()
        try:
            await asyncio.wait_for(action.drain(), 15.0)
            assert action.published == 1
        finally:
            await action.close()
            server.stop()

    asyncio.run(go())
