"""MQTT ingest with aiomqtt: QoS 1, persistent MQTT 5 session, receipts to the nodes.

The hub connects with a fixed client id, ``clean_start=False`` and a session expiry, so the
broker keeps its subscription and queues messages while it is away. By default it subscribes
plainly to ``ouie/v1/+/+/events`` (and ``.../status``): Mosquitto 2.0 keeps such a
subscription across its own restart, but not a shared one (``$share/<group>/...``, opt-in
with ``share_group`` to spread the load over several hub workers), whose messages then
reach no subscriber until a worker subscribes again (issue 18: 18 of 21 shots stored).

Receipts: once a message is committed (stored, a duplicate, or dead-lettered for its
content) the hub publishes an ``AckMessage`` on ``ouie/v1/<site>/<sensor>/ack`` (QoS 1).
The node deletes the message from its spool only then, so a message the broker
acknowledged and then lost in a crash is sent again (``ouie.transport.mqtt``).

Acknowledge after commit: aiomqtt has no manual-ack API of its own, so the hub switches its
underlying paho-mqtt client to manual acknowledgement (``manual_ack_set(True)``, paho ≥ 2)
and sends each PUBACK only after the batch holding the message is committed. A message
received but not committed when the hub dies is therefore redelivered by the broker (to
this session or another group member) and stored once, thanks to the ``message_id`` dedupe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from ouie.config.hub import MqttIngestSettings
from ouie.core.messages import AckMessage, topic_for
from ouie.hub.ingest import Envelope
from ouie.transport.mqtt import BrokerAddress, parse_broker_url
from ouie.transport.tls import check_tls_url, tls_parameters

log = logging.getLogger(__name__)

EVENTS_FILTER = "ouie/v1/+/+/events"
STATUS_FILTER = "ouie/v1/+/+/status"
ONSETS_FILTER = "ouie/v1/+/+/onsets"


#: Refusals the hub confirms, so the node stops resending: the message came from that
#: sensor's topic and is kept in dead letters, and sending it again cannot change the
#: verdict. Any other refusal (another sensor named in the payload, an unregistered sensor,
#: and whatever reason a later check adds, e.g. a bad signature) gets no receipt: a node
#: keeps what it sent until the hub could really store it, and a forger cannot empty
#: another sensor's spool.
CONFIRMED_REJECTIONS = frozenset(
    {
        "invalid",
        "schema_version",
        "unknown_kind",
        "clock_future",
        "clock_stale",
        "bad_times",
        "internal_error",
        # correctly signed but not newer than the last one stored (a node whose spool was
        # wiped restarts its sequence): resending cannot help, and no forger can make it
        "replay",
    }
)
RECEIPT_QUEUE = 100_000
RECEIPT_BATCH = 500


def receipt_for(topic: str, payload: bytes, outcome: str) -> tuple[str, bytes] | None:
    """The receipt (topic, payload) for one committed message, or ``None`` when it gets
    none: a refusal outside ``CONFIRMED_REJECTIONS``, or no ``message_id`` to name."""
    if outcome.startswith("rejected:"):
        reason = outcome.split(":", 1)[1]
        if reason not in CONFIRMED_REJECTIONS:
            return None
        verdict = "rejected"
    elif outcome == "accepted":
        verdict, reason = "stored", ""
    elif outcome == "duplicate":
        verdict, reason = "duplicate", ""
    else:
        return None
    parts = topic.split("/")
    if len(parts) != 5 or parts[:2] != ["ouie", "v1"] or parts[4] not in {"events", "status"}:
        return None
    try:
        data = json.loads(payload)
        message_id = data.get("message_id") if isinstance(data, dict) else None
        receipt = AckMessage(
            site=parts[2],
            sensor_id=parts[3],
            message_id=message_id,
            outcome=verdict,
            reason=reason,
        )
    except (ValueError, RecursionError, ValidationError):
        return None
    return topic_for(receipt.site, receipt.sensor_id, "ack"), receipt.model_dump_json().encode()


def shared(topic_filter: str, group: str | None) -> str:
    return f"$share/{group}/{topic_filter}" if group else topic_filter


def broker_address(url: str) -> BrokerAddress:
    """``mqtt://host[:port]`` or, with TLS, ``mqtts://host[:port]`` (the node's parser)."""
    return parse_broker_url(url)


class MqttIngest:
    """Runs until cancelled; reconnects with backoff; publishes retained sensor configs."""

    def __init__(
        self,
        settings: MqttIngestSettings,
        submit: Callable[[Envelope], Awaitable[None]],
    ) -> None:
        self.settings = settings
        # an unusable URL or certificate is an error at start, not a reconnect loop
        check_tls_url(settings.tls, broker_address(settings.url).tls, "mqtt")
        self.submit = submit
        self.client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self._pending_configs: dict[str, bytes] = {}
        self.received = 0
        self.receipts_sent = 0
        # Receipts wait here for the connection; one lost with it costs only a resend by
        # the node (it resends what was not confirmed when it reconnects).
        self._receipts: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(RECEIPT_QUEUE)

    def _make_client(self) -> aiomqtt.Client:
        broker = broker_address(self.settings.url)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.settings.session_expiry_s
        client = aiomqtt.Client(
            broker.host,
            broker.port,
            identifier=self.settings.client_id,
            username=self.settings.username,
            password=self.settings.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            keepalive=self.settings.keepalive_s,
            properties=properties,
            max_inflight_messages=1000,
            tls_params=tls_parameters(self.settings.tls) if broker.tls else None,
        )
        client._client.manual_ack_set(True)
        return client

    async def publish_config(self, topic: str, payload: bytes) -> None:
        """Publish a retained config now, or as soon as the broker is reachable."""
        self._pending_configs[topic] = payload
        if self.client is not None and self.connected.is_set():
            await self._flush_configs(self.client)

    async def publish_request(self, topic: str, payload: bytes) -> bool:
        """Publish an onset request now (not retained, not queued: a request that waits out
        an outage would ask about onsets the sensor no longer keeps); False when offline."""
        client = self.client
        if client is None or not self.connected.is_set():
            return False
        try:
            await client.publish(topic, payload, qos=1)
        except aiomqtt.MqttError as exc:
            log.warning("onset request on %s not sent: %s", topic, exc)
            return False
        return True

    async def _flush_configs(self, client: aiomqtt.Client) -> None:
        for topic, payload in list(self._pending_configs.items()):
            await client.publish(topic, payload, qos=1, retain=True)
            if self._pending_configs.get(topic) == payload:
                del self._pending_configs[topic]

    def _confirmer(self, topic: str, payload: bytes) -> Callable[[str], None] | None:
        if not self.settings.confirm:
            return None

        def confirm(outcome: str) -> None:
            receipt = receipt_for(topic, payload, outcome)
            if receipt is None:
                return
            try:
                self._receipts.put_nowait(receipt)
            except asyncio.QueueFull:
                log.debug("hub MQTT ingest: receipt queue full; the node will resend")

        return confirm

    async def _send_receipts(self, client: aiomqtt.Client) -> None:
        while True:
            batch = [await self._receipts.get()]
            while len(batch) < RECEIPT_BATCH and not self._receipts.empty():
                batch.append(self._receipts.get_nowait())
            # Tasks start in creation order, so receipts go out in commit order.
            results = await asyncio.gather(
                *(client.publish(topic, body, qos=1) for topic, body in batch),
                return_exceptions=True,
            )
            self.receipts_sent += sum(result is None for result in results)

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
            receipts: asyncio.Task[None] | None = None
            try:
                async with client:
                    self.client = client
                    delay = 0.5
                    await client.subscribe(shared(EVENTS_FILTER, group), qos=1)
                    await client.subscribe(shared(STATUS_FILTER, group), qos=1)
                    await client.subscribe(shared(ONSETS_FILTER, group), qos=1)
                    self.connected.set()
                    receipts = asyncio.create_task(
                        self._send_receipts(client), name="ouie-hub-mqtt-receipts"
                    )
                    await self._flush_configs(client)
                    log.info("hub MQTT ingest connected to %s", self.settings.url)
                    async for message in client.messages:
                        self.received += 1
                        payload: Any = message.payload
                        data = payload if isinstance(payload, bytes) else str(payload).encode()
                        topic = str(message.topic)
                        await self.submit(
                            Envelope(
                                source="mqtt",
                                topic=topic,
                                payload=data,
                                ack=self._acker(client, message.mid, message.qos),
                                confirm=self._confirmer(topic, data),
                            )
                        )
            except aiomqtt.MqttError as exc:
                log.warning("hub MQTT ingest: %s; reconnecting in %.1f s", exc, delay)
            finally:
                self.connected.clear()
                self.client = None
                if receipts is not None:
                    receipts.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await receipts
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
