"""MQTT ingest with aiomqtt: QoS 1, persistent MQTT 5 session, shared subscription.

Each hub worker connects with its own client id, ``clean_start=False`` and a session expiry,
so the broker keeps its subscription and queues messages while it is away. Workers share
the load through ``$share/<group>/ouie/v1/+/+/events`` (and ``.../status``).

Acknowledge after commit: aiomqtt has no manual-ack API of its own, so the hub switches its
underlying paho-mqtt client to manual acknowledgement (``manual_ack_set(True)``, paho ≥ 2)
and sends each PUBACK only after the batch holding the message is committed. A message
received but not committed when the hub dies is therefore redelivered by the broker (to
this session or another group member) and stored once, thanks to the ``message_id`` dedupe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ouie.config.hub import MqttIngestSettings
from ouie.hub.ingest import Envelope

log = logging.getLogger(__name__)

EVENTS_FILTER = "ouie/v1/+/+/events"
STATUS_FILTER = "ouie/v1/+/+/status"


def shared(topic_filter: str, group: str | None) -> str:
    return f"$share/{group}/{topic_filter}" if group else topic_filter


def broker_address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    if parsed.scheme not in {"mqtt", "tcp", ""}:
        raise ValueError(f"unsupported MQTT URL scheme in {url!r} (use mqtt://host:port)")
    return parsed.hostname or "127.0.0.1", parsed.port or 1883


class MqttIngest:
    """Runs until cancelled; reconnects with backoff; publishes retained sensor configs."""

    def __init__(
        self,
        settings: MqttIngestSettings,
        submit: Callable[[Envelope], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.submit = submit
        self.client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self._pending_configs: dict[str, bytes] = {}
        self.received = 0

    def _make_client(self) -> aiomqtt.Client:
        host, port = broker_address(self.settings.url)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.settings.session_expiry_s
        client = aiomqtt.Client(
            host,
            port,
            identifier=self.settings.client_id,
            username=self.settings.username,
            password=self.settings.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            keepalive=self.settings.keepalive_s,
            properties=properties,
            max_inflight_messages=1000,
        )
        client._client.manual_ack_set(True)
        return client

    async def publish_config(self, topic: str, payload: bytes) -> None:
        """Publish a retained config now, or as soon as the broker is reachable."""
        self._pending_configs[topic] = payload
        if self.client is not None and self.connected.is_set():
            await self._flush_configs(self.client)

    async def _flush_configs(self, client: aiomqtt.Client) -> None:
        for topic, payload in list(self._pending_configs.items()):
            await client.publish(topic, payload, qos=1, retain=True)
            if self._pending_configs.get(topic) == payload:
                del self._pending_configs[topic]

    def _acker(self, client: aiomqtt.Client, mid: int, qos: int) -> Callable[[], None]:
        paho = client._client

        def ack() -> None:
            if qos > 0 and self.client is client:
                paho.ack(mid, qos)

        return ack

    async def run(self) -> None:
        delay = 0.5
        group = self.settings.share_group
        while True:
            client = self._make_client()
            try:
                async with client:
                    self.client = client
                    delay = 0.5
                    await client.subscribe(shared(EVENTS_FILTER, group), qos=1)
                    await client.subscribe(shared(STATUS_FILTER, group), qos=1)
                    self.connected.set()
                    await self._flush_configs(client)
                    log.info("hub MQTT ingest connected to %s", self.settings.url)
                    async for message in client.messages:
                        self.received += 1
                        payload: Any = message.payload
                        data = payload if isinstance(payload, bytes) else str(payload).encode()
                        await self.submit(
                            Envelope(
                                source="mqtt",
                                topic=str(message.topic),
                                payload=data,
                                ack=self._acker(client, message.mid, message.qos),
                            )
                        )
            except aiomqtt.MqttError as exc:
                log.warning("hub MQTT ingest: %s; reconnecting in %.1f s", exc, delay)
            finally:
                self.connected.clear()
                self.client = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
