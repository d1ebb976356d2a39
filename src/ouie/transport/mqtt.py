"""MQTT publisher (aiomqtt): QoS 1, persistent session, store-and-forward through a spool.

Topics (``ouie.core.messages.topic_for``): ``ouie/v1/<site>/<sensor>/events`` and
``.../status``; the node subscribes to its retained ``.../config`` and hands each valid
``ThresholdConfigMessage`` to ``on_config``.

Delivery: every message is first appended to the SQLite ``Spool``; one background task
keeps a connection to the broker and drains the spool in insertion order, up to
``inflight`` messages at a time, deleting each only once the broker has acknowledged it
(PUBACK). While the broker is unreachable messages simply accumulate (bounded, see
``ouie.transport.spool``) and the connection is retried with exponential backoff; on
reconnect the backlog goes out first, in order. Delivery is at-least-once: a message whose
PUBACK was lost with the connection is sent again, so consumers deduplicate on
``message_id`` (the hub does).
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
from ouie.core.messages import EventMessage, StatusMessage, topic_for
from ouie.transport.base import ConfigHandler, encode, parse_config
from ouie.transport.spool import Spool

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
        *,
        inflight: int = 20,
        ack_timeout_s: float = 10.0,
        reconnect_min_s: float = 0.2,
        reconnect_max_s: float = 30.0,
        close_timeout_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.broker = parse_broker_url(settings.url)
        self.spool = spool
        self.site = site
        self.sensor_id = sensor_id
        self.on_config = on_config
        self.client_id = settings.client_id or default_client_id(site, sensor_id)
        self.inflight = inflight
        self.ack_timeout_s = ack_timeout_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.close_timeout_s = close_timeout_s
        self.events_topic = topic_for(site, sensor_id, "events")
        self.status_topic = topic_for(site, sensor_id, "status")
        self.config_topic = topic_for(site, sensor_id, "config")
        self.connected = asyncio.Event()
        self.connections = 0  # successful connects, for tests and logs
        self.delivered = 0
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

    @property
    def spooled_events(self) -> int:
        return self.spool.events

    def next_sequence(self) -> int:
        """Sequence number for this node's next event, carried over from earlier runs."""
        return self.spool.get_meta(SEQUENCE_KEY)

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything spooled so far was acknowledged; False on timeout."""
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
            tls_params=aiomqtt.TLSParameters() if self.broker.tls else None,
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
        tasks = [
            asyncio.create_task(self._drain(client), name="ouie-mqtt-drain"),
            asyncio.create_task(self._listen(client), name="ouie-mqtt-listen"),
            asyncio.create_task(self._stop.wait(), name="ouie-mqtt-stop"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            batch = self.spool.peek(self.inflight)
            if not batch:
                self._wake.clear()
                self._drained.set()
                await self._wake.wait()
                continue
            # Tasks start in creation order, so paho queues the PUBLISH packets in spool
            # order; the broker forwards one client's QoS 1 messages in the order received.
            results = await asyncio.gather(
                *(client.publish(m.topic, m.payload, qos=1) for m in batch),
                return_exceptions=True,
            )
            acked = [m.id for m, result in zip(batch, results, strict=True) if result is None]
            self.delivered += self.spool.remove(acked)
            for result in results:
                if isinstance(result, aiomqtt.MqttError):
                    raise result
                if isinstance(result, BaseException):
                    raise aiomqtt.MqttError(f"publish failed: {result!r}") from result

    async def _listen(self, client: aiomqtt.Client) -> None:
        """Receive config messages; also the watchdog that notices a lost connection."""
        async for message in client.messages:
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
