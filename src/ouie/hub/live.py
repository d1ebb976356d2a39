"""Live incident updates for Server-Sent Events subscribers (one hub process)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


class Broadcaster:
    """Fan-out of change notifications; a slow subscriber loses its oldest updates."""

    def __init__(self, max_queue: int = 1000) -> None:
        self.max_queue = max_queue
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=self.max_queue)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._queues.discard(queue)

    def publish(self, message: dict[str, Any]) -> None:
        for queue in list(self._queues):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)

    @property
    def subscribers(self) -> int:
        return len(self._queues)
