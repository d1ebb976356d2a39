"""The MQTT publisher without a broker: everything waits in the spool, nothing is lost."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from ouie.config.node import MqttSettings, NodeSettings
from ouie.core.messages import AckMessage
from ouie.transport.base import Publisher, ResumesSequence, parse_receipt
from ouie.transport.factory import create_publisher
from ouie.transport.mqtt import MqttPublisher, default_client_id, parse_broker_url
from ouie.transport.spool import Spool
from tests.integration.mosquitto import free_port
from tests.transport.messages import event, status


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://127.0.0.1:1883", "127.0.0.1", 1883, False),
        ("mqtt://broker.example", "broker.example", 1883, False),
        ("mqtts://broker.example", "broker.example", 8883, True),
        ("mqtts://broker.example:9000", "broker.example", 9000, True),
        ("localhost:1884", "localhost", 1884, False),
    ],
)
def test_broker_urls(url: str, host: str, port: int, tls: bool) -> None:
    address = parse_broker_url(url)
    assert (address.host, address.port, address.tls) == (host, port, tls)


@pytest.mark.parametrize("url", ["http://x", "mqtt://", "mqtt://h:notaport"])
def test_bad_broker_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_broker_url(url)


def test_offline_publisher_spools_everything_and_keeps_it_on_close(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.sqlite3"

    async def main() -> None:
        publisher = MqttPublisher(
            MqttSettings(url=f"mqtt://127.0.0.1:{free_port()}"),  # nobody listens there
            Spool(path, max_events=1000),
            "s1",
            "n1",
            reconnect_min_s=0.01,
            reconnect_max_s=0.05,
            close_timeout_s=0.5,
        )
        assert isinstance(publisher, Publisher) and isinstance(publisher, ResumesSequence)
        assert publisher.client_id == default_client_id("s1", "n1")
        await publisher.start()
        for i in range(10):
            await publisher.publish_event(event(i))
        await publisher.publish_status(status())
        await asyncio.sleep(0.2)  # several reconnect attempts
        assert not publisher.connected.is_set()
        assert publisher.spooled_events == 10
        assert publisher.next_sequence() == 10
        assert not await publisher.flush(0.05)
        with caplog.at_level(logging.WARNING, logger="ouie.transport.mqtt"):
            await publisher.close()
        await publisher.close()
        with pytest.raises(RuntimeError):
            await publisher.publish_event(event(10))

    asyncio.run(main())
    assert "10 events not yet delivered" in caplog.text
    # repeated failed attempts are logged once as a warning, then quietly
    assert caplog.text.count("unreachable") <= 1
    spool = Spool(path)
    queued = spool.peek(100)
    assert [json.loads(m.payload)["sequence"] for m in queued if m.kind == "event"] == list(
        range(10)
    )
    assert [m.topic for m in queued][-1] == "ouie/v1/s1/n1/status"
    spool.close()


def test_factory_builds_each_kind(tmp_path: Path) -> None:
    async def main() -> None:
        jsonl = await create_publisher(
            NodeSettings.model_validate(
                {"publish": {"kind": "jsonl", "jsonl_path": str(tmp_path / "o.jsonl")}}
            )
        )
        await jsonl.close()
        with pytest.raises(ValueError, match="in-process bus"):
            await create_publisher(NodeSettings.model_validate({"publish": {"kind": "inproc"}}))
        mqtt = await create_publisher(
            NodeSettings.model_validate(
                {
                    "publish": {
                        "kind": "mqtt",
                        "mqtt": {"url": f"mqtt://127.0.0.1:{free_port()}"},
                        "spool": {"path": str(tmp_path / "spool.sqlite3")},
                    }
                }
            )
        )
        assert isinstance(mqtt, MqttPublisher)
        mqtt.close_timeout_s = 0.5
        await mqtt.close()

    asyncio.run(main())


def test_only_valid_receipts_for_this_sensor_count() -> None:
    good = AckMessage(site="s1", sensor_id="n1", message_id="a" * 32, outcome="stored")
    assert parse_receipt(good.model_dump_json().encode(), "s1", "n1") == good
    other = good.model_copy(update={"sensor_id": "n2"})
    assert parse_receipt(other.model_dump_json().encode(), "s1", "n1") is None
    for junk in (b"", b"{oops", b'{"kind": "ack"}', good.model_dump_json().encode()[:-2]):
        assert parse_receipt(junk, "s1", "n1") is None
