"""MQTT publisher (aiomqtt): QoS 1, persistent session, store-and-forward through a spool.

Topics (``ouie.core.messages.topic_for``): ``ouie/v1/<site>/<sensor>/events`` and
``.../status``; the node subscribes to its retained ``.../config`` and hands each valid
``ThresholdConfigMessage`` to ``on_config``.

Delivery: every message is first appended to the SQLite ``Spool``; one background task
keeps a connection to the broker and sends the spool in insertion order, up to
``inflight`` messages at a time. A message leaves the spool only when the hub confirms it
stored it: the hub publishes an ``AckMessage`` per message on ``.../ack`` after its
transaction committed (``keep_until: stored``, the default). The broker's PUBACK is not
enough: Mosquitto acknowledges before it has saved a message, and a broker crash then
loses it (issue 18: 14 of 21 shots stored after a broker kill while the hub was down).

Resending: every new connection sends again, in order, everything not yet confirmed, since
what an earlier connection handed the broker may have died with it. While connected, the
hub's receipts come in the order it stored the messages; when it confirms a later message
but an earlier one stays unconfirmed for ``resend_after_s``, the broker lost the earlier
one (e.g. it dropped queued messages past its limit), and the unconfirmed messages go out
again from there. Delivery is at-least-once and in order; the hub drops duplicates by
``message_id``. While the broker is unreachable messages accumulate (bounded, see
``ouie.transport.spool``) and the connection is retried with exponential backoff.
With ``keep_until: puback`` (a consumer that sends no receipts) a message leaves the spool
on the broker's PUBACK, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiomqtt

from ouie.config.node import MqttSettings
from ouie.core.messages import (
    AckMessage,
    EventMessage,
    ImpulseOnsetMessage,
    StatusMessage,
    topic_for,
)
from ouie.transport.base import (
    ConfigHandler,
    OnsetRequestHandler,
    encode,
    parse_config,
    parse_onset_request,
    parse_receipt,
)
from ouie.transport.spool import Spool
from ouie.transport.tls import check_tls_url, tls_parameters

log = logging.getLogger(__name__)

SEQUENCE_KEY = "next_sequence"


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://host[:port]`` (1883) or ``mqtts://host[:port]`` (8883, TLS)."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in {"mqtt", "mqtts", "tcp", "ssl"}:
        raise ValueError(f"unsupported broker URL scheme {parts.scheme!r} in {url!r}")
    if not parts.hostname:
        raise ValueError(f"broker URL {url!r} has no host")
    tls = parts.scheme in {"mqtts", "ssl"}
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ValueError(f"broker URL {url!r} has an invalid port") from exc
    return BrokerAddress(parts.hostname, port, tls)


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return payload.encode("utf-8") if isinstance(payload, str) else b""


def default_client_id(site: str, sensor_id: str) -> str:
    return f"ouie-node-{site}-{sensor_id}"[:128]


class MqttPublisher:
    def __init__(
        self,
        settings: MqttSettings,
        spool: Spool,
        site: str,
        sensor_id: str,
        on_config: ConfigHandler | None = None,
        on_onset_request: OnsetRequestHandler | None = None,
        *,
        inflight: int = 20,
        ack_timeout_s: float = 10.0,
        reconnect_min_s: float = 0.2,
        reconnect_max_s: float = 30.0,
        close_timeout_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.broker = parse_broker_url(settings.url)
        check_tls_url(settings.tls, self.broker.tls, "publish.mqtt")
        self.spool = spool
        self.site = site
        self.sensor_id = sensor_id
        self.on_config = on_config
        self.on_onset_request = on_onset_request
        self.client_id = settings.client_id or default_client_id(site, sensor_id)
        self.inflight = inflight
        self.ack_timeout_s = ack_timeout_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.close_timeout_s = close_timeout_s
        self.events_topic = topic_for(site, sensor_id, "events")
        self.status_topic = topic_for(site, sensor_id, "status")
        self.config_topic = topic_for(site, sensor_id, "config")
        self.ack_topic = topic_for(site, sensor_id, "ack")
        self.request_topic = topic_for(site, sensor_id, "onset-request")
        self.onsets_topic = topic_for(site, sensor_id, "onsets")
        self.onsets_dropped = 0  # onset answers that found no connection (not spooled)
        self._live: aiomqtt.Client | None = None  # the connected client, for onset answers
        self.awaits_receipts = settings.keep_until == "stored"
        self.connected = asyncio.Event()
        self.connections = 0  # successful connects, for tests and logs
        self.delivered = 0  # messages the broker acknowledged (PUBACK)
        self.confirmed = 0  # messages the hub confirmed it stored (or dead-lettered)
        self.resends = 0  # times the unconfirmed messages were sent again while connected
        # The spool row sent last on this connection; rows above it are yet to be sent.
        self._cursor = 0
        # The highest spool row the hub confirmed, and the unconfirmed row it overtook
        # (row, since when): the evidence that the broker lost a message.
        self._last_confirmed = 0
        self._gap: tuple[int, float] | None = None
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        if len(spool) == 0:
            self._drained.set()

    # -- the Publisher interface ----------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ouie-mqtt")

    async def publish_event(self, message: EventMessage) -> None:
        self._check_open()
        self.spool.append("event", self.events_topic, encode(message))
        if message.sequence + 1 > self.spool.get_meta(SEQUENCE_KEY):
            self.spool.set_meta(SEQUENCE_KEY, message.sequence + 1)
        self._pending()

    async def publish_status(self, message: StatusMessage) -> None:
        self._check_open()
        self.spool.append("status", self.status_topic, encode(message))
        self._pending()

    async def publish_onset(self, message: ImpulseOnsetMessage) -> None:
        """Straight to the broker, not through the spool: an answer that waits out an outage
        comes too late for the shot it was asked about."""
        self._check_open()
        client = self._live
        if client is None or not self.connected.is_set():
            self.onsets_dropped += 1
            log.warning("onset answer to %s dropped: not connected", message.request_id)
            return
        try:
            await client.publish(self.onsets_topic, encode(message), qos=1)
        except aiomqtt.MqttError as exc:
            self.onsets_dropped += 1
            log.warning("onset answer to %s dropped: %s", message.request_id, exc)

    @property
    def spooled_events(self) -> int:
        return self.spool.events

    def next_sequence(self) -> int:
        """Sequence number for this node's next event, carried over from earlier runs."""
        return self.spool.get_meta(SEQUENCE_KEY)

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything spooled so far was confirmed (by the hub's receipt, or the
        broker's PUBACK with ``keep_until: puback``); False on timeout."""
        try:
            await asyncio.wait_for(self._drained.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            if self.connected.is_set() and len(self.spool):
                await self.flush(self.close_timeout_s)
            self._stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.close_timeout_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self.spool.events:
            log.warning(
                "%d events not yet delivered stay in %s and go out on the next start",
                self.spool.events,
                self.spool.path,
            )
        self.spool.close()

    # -- internals ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("publisher is closed")

    def _pending(self) -> None:
        self._drained.clear()
        self._wake.set()

    def _client(self) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username=self.settings.username,
            password=self.settings.password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=False,  # persistent session: the broker keeps our subscription
            keepalive=self.settings.keepalive_s,
            timeout=self.ack_timeout_s,
            max_inflight_messages=self.inflight,
            tls_params=tls_parameters(self.settings.tls) if self.broker.tls else None,
        )
        client.pending_calls_threshold = self.inflight + 10
        return client

    async def _run(self) -> None:
        backoff = self.reconnect_min_s
        failures = 0
        offline_since: float | None = None
        while not self._stop.is_set():
            # A fresh client per connection: the spool, not paho's in-memory session, is
            # the record of what still has to go out.
            client = self._client()
            try:
                async with client:
                    self.connections += 1
                    self.connected.set()
                    outage = (
                        ""
                        if offline_since is None
                        else (f" after {time.monotonic() - offline_since:.1f} s offline")
                    )
                    log.info(
                        "connected to MQTT broker %s:%d%s; %d events spooled",
                        self.broker.host,
                        self.broker.port,
                        outage,
                        self.spool.events,
                    )
                    backoff, failures, offline_since = self.reconnect_min_s, 0, None
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                failures += 1
                if self.connected.is_set() or failures == 1:
                    log.warning(
                        "MQTT broker %s:%d unreachable (%s); spooling events to %s",
                        self.broker.host,
                        self.broker.port,
                        exc,
                        self.spool.path,
                    )
                else:
                    log.debug("MQTT reconnect attempt %d failed: %s", failures, exc)
                if offline_since is None:
                    offline_since = time.monotonic()
            except Exception:  # e.g. the spool's disk is full: keep trying, loudly
                log.exception("MQTT publisher error; retrying")
                if offline_since is None:
                    offline_since = time.monotonic()
            finally:
                self.connected.clear()
            if self._stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff)
            backoff = min(backoff * 2, self.reconnect_max_s)

    async def _session(self, client: aiomqtt.Client) -> None:
        if self.on_config is not None:
            await client.subscribe(self.config_topic, qos=1)
        if self.awaits_receipts:
            await client.subscribe(self.ack_topic, qos=1)
        if self.on_onset_request is not None:
            await client.subscribe(self.request_topic, qos=1)
        self._live = client
        tasks = [
            asyncio.create_task(self._drain(client), name="ouie-mqtt-drain"),
            asyncio.create_task(self._listen(client), name="ouie-mqtt-listen"),
            asyncio.create_task(self._stop.wait(), name="ouie-mqtt-stop"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._live = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error

    async def _drain(self, client: aiomqtt.Client) -> None:
        # Each connection starts from the oldest unconfirmed message (see the module doc).
        self._cursor = 0
        self._gap = None
        while True:
            self._resend_if_overtaken()
            batch = self.spool.peek(self.inflight, after=self._cursor)
            if not batch:
                if len(self.spool) == 0:
                    self._drained.set()
                self._wake.clear()
                timeout = None
                if self._gap is not None:
                    due = self._gap[1] + self.settings.resend_after_s
                    timeout = max(0.0, due - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                continue
            # Tasks start in creation order, so paho queues the PUBLISH packets in spool
            # order; the broker forwards one client's QoS 1 messages in the order received.
            results = await asyncio.gather(
                *(client.publish(m.topic, m.payload, qos=1) for m in batch),
                return_exceptions=True,
            )
            acked: list[int] = []
            for message, result in zip(batch, results, strict=True):
                if result is not None:
                    break  # the connection failed: the rest goes again after reconnect
                acked.append(message.id)
                self._cursor = message.id
            self.delivered += len(acked)
            if not self.awaits_receipts:
                self.spool.remove(acked)
            for result in results:
                if isinstance(result, aiomqtt.MqttError):
                    raise result
                if isinstance(result, BaseException):
                    raise aiomqtt.MqttError(f"publish failed: {result!r}") from result

    def _on_receipt(self, receipt: AckMessage) -> None:
        """The hub stored (or dead-lettered) one of our messages: it may leave the spool."""
        row = self.spool.confirm(receipt.message_id)
        if row is None:
            return  # the receipt for a resent duplicate, or for a message of another run
        self.confirmed += 1
        if receipt.outcome == "rejected":
            log.warning(
                "the hub refused message %s (%s); it is kept in the hub's dead letters",
                receipt.message_id,
                receipt.reason or "no reason given",
            )
        self._last_confirmed = max(self._last_confirmed, row)
        oldest = self.spool.oldest_id()
        if oldest is None:
            self._gap = None
            self._drained.set()
        elif self._gap is None and oldest < self._last_confirmed and oldest <= self._cursor:
            # The hub stores one client's messages in the order sent: an earlier one still
            # unconfirmed was lost, or its receipt is only late. Give it resend_after_s.
            self._gap = (oldest, time.monotonic())
            self._wake.set()

    def _resend_if_overtaken(self) -> None:
        if self._gap is None:
            return
        row, since = self._gap
        now = time.monotonic()
        if now - since < self.settings.resend_after_s:
            return
        self._gap = None
        oldest = self.spool.oldest_id()
        if oldest is None or oldest > self._cursor or oldest >= self._last_confirmed:
            return
        if oldest > row:  # that one was confirmed late; watch the next one
            self._gap = (oldest, now)
            return
        self.resends += 1
        log.warning(
            "the hub confirmed later messages but not spool row %d for %.0f s: the broker "
            "lost it; sending the %d unconfirmed messages again, in order",
            oldest,
            now - since,
            len(self.spool),
        )
        self._cursor = 0

    async def _listen(self, client: aiomqtt.Client) -> None:
        """Receive config messages and the hub's receipts; also the watchdog that notices a
        lost connection."""
        async for message in client.messages:
            if self.awaits_receipts and message.topic.matches(self.ack_topic):
                receipt = parse_receipt(_payload_bytes(message.payload), self.site, self.sensor_id)
                if receipt is not None:
                    self._on_receipt(receipt)
                continue
            if self.on_onset_request is not None and message.topic.matches(self.request_topic):
                request = parse_onset_request(
                    _payload_bytes(message.payload), self.site, self.sensor_id
                )
                if request is not None:
                    try:
                        self.on_onset_request(request)
                    except Exception:  # a bad request must not cost us the connection
                        log.exception("handling an onset request failed")
                continue
            if self.on_config is None or not message.topic.matches(self.config_topic):
                continue
            payload = message.payload
            if isinstance(payload, bytes | bytearray):
                raw = bytes(payload)
            elif isinstance(payload, str):
                raw = payload.encode("utf-8")
            else:
                raw = b""
            config = parse_config(raw, self.site, self.sensor_id)
            if config is None:
                continue
            try:
                self.on_config(config)
            except Exception:  # a bad config must not cost us the connection
                log.exception("applying threshold config failed")
