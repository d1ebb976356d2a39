"""An MQTT-shaped message bus inside one asyncio process, and a node publisher on it.

``ouie demo`` and tests run nodes and the hub in one process; they talk over this bus with
the same topics and JSON payloads they would use over MQTT, so the hub's ingest code does
not care which transport fed it. Semantics follow MQTT where it matters here:

* topic filters with ``+`` (one level) and ``#`` (all remaining levels, also the parent);
  wildcards in the first level never match topics starting with ``$``;
* retained messages: the last retained payload per topic is delivered to each new matching
  subscription; an empty retained payload clears it;
* each subscription has its own bounded queue; when a consumer falls behind, the oldest
  queued message is dropped and counted (``Subscription.dropped``), never the publisher
  blocked.

All methods must be called from the event loop thread that uses the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

from ouie.core.messages import EventMessage, ImpulseOnsetMessage, StatusMessage, topic_for
from ouie.transport.base import (
    ConfigHandler,
    OnsetRequestHandler,
    encode,
    parse_config,
    parse_onset_request,
)

log = logging.getLogger(__name__)

DEFAULT_QUEUE = 10_000


@dataclass(frozen=True)
class BusMessage:
    topic: str
    payload: bytes
    retain: bool = False


def validate_topic(topic: str) -> None:
    """A topic to publish to: non-empty, no wildcards."""
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        raise ValueError(f"invalid topic {topic!r}: must be non-empty and without + or #")


def validate_filter(topic_filter: str) -> None:
    """A subscription filter: ``+`` fills a whole level, ``#`` only as the whole last level."""
    if not topic_filter or "\x00" in topic_filter:
        raise ValueError(f"invalid topic filter {topic_filter!r}")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"invalid topic filter {topic_filter!r}: # must be the last level")
        if "+" in level and level != "+":
            raise ValueError(f"invalid topic filter {topic_filter!r}: + must fill a level")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic matching (``validate_filter`` first if the filter is untrusted)."""
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    if topic.startswith("$") and filter_levels[0] in {"+", "#"}:
        return False
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)


class Subscription:
    """Messages matching one filter, in publish order. Iterate it, or ``await get()``."""

    def __init__(self, bus: InProcBus, topic_filter: str, max_queue: int) -> None:
        self.bus = bus
        self.topic_filter = topic_filter
        self.dropped = 0
        self._queue: asyncio.Queue[BusMessage] = asyncio.Queue(maxsize=max_queue)
        self.closed = False

    def _offer(self, message: BusMessage) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "bus subscriber %r is falling behind: %d messages dropped",
                    self.topic_filter,
                    self.dropped,
                )
        self._queue.put_nowait(message)

    def pending(self) -> int:
        return self._queue.qsize()

    async def get(self) -> BusMessage:
        return await self._queue.get()

    def get_nowait(self) -> BusMessage | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def __aiter__(self) -> AsyncIterator[BusMessage]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[BusMessage]:
        while True:
            yield await self._queue.get()

    def close(self) -> None:
        self.bus.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class InProcBus:
    """Publish/subscribe by MQTT topic, in memory, for one event loop."""

    def __init__(self, max_queue: int = DEFAULT_QUEUE) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.max_queue = max_queue
        self._subscriptions: list[Subscription] = []
        self._retained: dict[str, bytes] = {}
        self.published = 0

    def publish_nowait(self, topic: str, payload: bytes, retain: bool = False) -> None:
        validate_topic(topic)
        self.published += 1
        if retain:
            if payload:
                self._retained[topic] = payload
            else:
                self._retained.pop(topic, None)
        message = BusMessage(topic, payload, retain=False)
        for subscription in list(self._subscriptions):
            if topic_matches(subscription.topic_filter, topic):
                subscription._offer(message)

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.publish_nowait(topic, payload, retain)

    def subscribe(self, topic_filter: str, max_queue: int | None = None) -> Subscription:
        validate_filter(topic_filter)
        subscription = Subscription(self, topic_filter, max_queue or self.max_queue)
        for topic, payload in self._retained.items():
            if topic_matches(topic_filter, topic):
                subscription._offer(BusMessage(topic, payload, retain=True))
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.closed = True
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)

    def retained(self, topic: str) -> bytes | None:
        return self._retained.get(topic)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)


class InProcPublisher:
    """A node's publisher on an ``InProcBus``: the MQTT topics, without a broker."""

    def __init__(
        self,
        bus: InProcBus,
        site: str,
        sensor_id: str,
        on_config: ConfigHandler | None = None,
        on_onset_request: OnsetRequestHandler | None = None,
    ) -> None:
        self.bus = bus
        self.site = site
        self.sensor_id = sensor_id
        self.on_config = on_config
        self.on_onset_request = on_onset_request
        self._events_topic = topic_for(site, sensor_id, "events")
        self._status_topic = topic_for(site, sensor_id, "status")
        self._onsets_topic = topic_for(site, sensor_id, "onsets")
        self._config_task: asyncio.Task[None] | None = None
        self._config_sub: Subscription | None = None
        self._request_task: asyncio.Task[None] | None = None
        self._request_sub: Subscription | None = None

    async def start(self) -> None:
        """Begin following this sensor's (retained) config topic and its onset requests,
        for the handlers given."""
        if self.on_onset_request is not None and self._request_task is None:
            self._request_sub = self.bus.subscribe(
                topic_for(self.site, self.sensor_id, "onset-request")
            )
            self._request_task = asyncio.create_task(self._follow_requests(self._request_sub))
        if self.on_config is None or self._config_task is not None:
            return
        self._config_sub = self.bus.subscribe(topic_for(self.site, self.sensor_id, "config"))
        self._config_task = asyncio.create_task(self._follow_config(self._config_sub))

    async def _follow_requests(self, subscription: Subscription) -> None:
        assert self.on_onset_request is not None
        async for message in subscription:
            request = parse_onset_request(message.payload, self.site, self.sensor_id)
            if request is not None:
                try:
                    self.on_onset_request(request)
                except Exception:  # a bad request must not take the node down
                    log.exception("handling an onset request failed")

    async def publish_onset(self, message: ImpulseOnsetMessage) -> None:
        await self.bus.publish(self._onsets_topic, encode(message))

    async def _follow_config(self, subscription: Subscription) -> None:
        assert self.on_config is not None
        async for message in subscription:
            config = parse_config(message.payload, self.site, self.sensor_id)
            if config is not None:
                try:
                    self.on_config(config)
                except Exception:  # a bad config must not take the node down
                    log.exception("applying threshold config failed")

    async def publish_event(self, message: EventMessage) -> None:
        await self.bus.publish(self._events_topic, encode(message))

    async def publish_status(self, message: StatusMessage) -> None:
        await self.bus.publish(self._status_topic, encode(message))

    async def close(self) -> None:
        if self._request_task is not None:
            self._request_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._request_task
            self._request_task = None
        if self._request_sub is not None:
            self._request_sub.close()
            self._request_sub = None
        if self._config_task is not None:
            self._config_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._config_task
            self._config_task = None
        if self._config_sub is not None:
            self._config_sub.close()
            self._config_sub = None

    @property
    def spooled_events(self) -> int:
        return 0
