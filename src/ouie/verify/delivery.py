"""HTTP delivery for the outputs that POST (webhook, VMS bookmark, CAP): retries, dead
letters, and the base their actions share.

2xx is success. Network errors, timeouts, 408, 425, 429 and 5xx are retried after
``initial_s × factor^(attempt−1)`` seconds (capped at ``max_s``, ± ``jitter``; a
``Retry-After`` in seconds is honoured up to ``max_s``); other 4xx answers are final. After
``max_attempts`` tries, or a final refusal, the delivery goes to the dead-letter store with
its last error. Deliveries run as background tasks that ``drain`` waits for.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from ouie.config.outputs import RetryPolicy
from ouie.verify.dead_letters import DeadLetter
from ouie.verify.plugin import OutputAction, OutputContext
from ouie.verify.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class DeliveryOutcome:
    ok: bool
    attempts: int
    status: int | None
    error: str
    latency_ms: float  # first attempt → final answer
    last_attempt_ms: float  # the successful (or last) request alone


Sleep = Callable[[float], Awaitable[None]]


async def post_with_retries(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    policy: RetryPolicy,
    *,
    secret: SecretStr | None = None,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> DeliveryOutcome:
    """POST ``body`` until a 2xx, a final refusal or ``policy.max_attempts``."""
    started = time.perf_counter()
    status: int | None = None
    error = ""
    attempt_ms = 0.0
    for attempt in range(1, policy.max_attempts + 1):
        timestamp = int(time.time())
        sent = dict(headers)
        sent[TIMESTAMP_HEADER] = str(timestamp)
        if secret is not None:
            sent[SIGNATURE_HEADER] = sign(secret.get_secret_value(), timestamp, body)
        retry_after: float | None = None
        t0 = time.perf_counter()
        try:
            response = await client.post(url, content=body, headers=sent, timeout=policy.timeout_s)
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}"
        else:
            status = response.status_code
            attempt_ms = (time.perf_counter() - t0) * 1000.0
            if 200 <= status < 300:
                return DeliveryOutcome(
                    True, attempt, status, "", (time.perf_counter() - started) * 1000.0, attempt_ms
                )
            error = f"HTTP {status}"
            if status not in RETRY_STATUSES:
                break
            header = response.headers.get("Retry-After")
            if header and header.strip().isdigit():
                retry_after = float(header)
        if attempt < policy.max_attempts:
            delay = policy.delay(attempt, rng)
            if retry_after is not None:
                delay = max(delay, min(retry_after, policy.max_s))
            await sleep(delay)
    return DeliveryOutcome(
        False, attempt, status, error, (time.perf_counter() - started) * 1000.0, attempt_ms
    )


@dataclass(frozen=True)
class Delivery:
    """One body for one URL: what is POSTed, and what its dead letter would hold."""

    url: str
    event: str
    delivery_id: str
    incident_id: str
    body: bytes
    headers: dict[str, str]


class DeliveringAction(OutputAction):
    """Base of the outputs that POST in the background: their client, the tasks ``drain``
    waits for, and the dead letter of a delivery that failed for good."""

    def __init__(
        self, output_id: str, ctx: OutputContext, retry: RetryPolicy, *, posts: bool = True
    ) -> None:
        self.id = output_id
        self.ctx = ctx
        self.retry = retry
        # an output that only renders (CAP without a URL) opens no connection pool
        self._client = ctx.http_client() if posts else None
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` in the background; ``drain`` waits for it."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver(self, delivery: Delivery, secret: SecretStr | None = None) -> DeliveryOutcome:
        """POST ``delivery`` with retries; a final failure becomes a dead letter."""
        if self._client is None:
            raise RuntimeError(f"output {self.id} was made without an HTTP client")
        outcome = await post_with_retries(
            self._client,
            delivery.url,
            delivery.body,
            delivery.headers,
            self.retry,
            secret=secret,
            sleep=self.ctx.sleep,
        )
        if not outcome.ok:
            self.ctx.dead_letters.add(
                DeadLetter(
                    output_id=self.id,
                    delivery_id=delivery.delivery_id,
                    url=delivery.url,
                    event=delivery.event,
                    incident_id=delivery.incident_id,
                    body=delivery.body.decode("utf-8"),
                    attempts=outcome.attempts,
                    last_error=outcome.error,
                )
            )
        return outcome

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        if self._client is not None:
            await self._client.aclose()
