"""Outbound webhooks (plugin ``webhook``): signed JSON per subscription, retries, dead letters.

Each subscription has a URL, a filter (labels, sites, kinds of change, minimum score) and
an encrypted signing secret. A matching incident change is POSTed as JSON::

    {"event": "incident.created", "delivery_id": "…", "sent_at": "…", "incident": {…}}

with headers ``X-Ouie-Event``, ``X-Ouie-Delivery`` (the same id on every retry: receivers
deduplicate on it), ``X-Ouie-Timestamp`` (Unix seconds) and
``X-Ouie-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``; binding the
timestamp lets receivers refuse replays (``verify_signature`` checks both).

Delivery: 2xx is success. Network errors, timeouts, 408, 429 and 5xx are retried after
``initial_s × factor^(attempt−1)`` seconds (capped at ``max_s``, ± ``jitter``; a
``Retry-After`` in seconds is honoured up to ``max_s``); other 4xx answers are final.
After ``max_attempts`` tries, or a final refusal, the delivery goes to the dead-letter
store with its last error (``WebhookDeadLettered``; the console lists them and can
replay them). Deliveries run as background tasks, at most ``concurrency`` at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
from pydantic import AwareDatetime, Field, SecretStr

from ouie.core.labels import EventLabel
from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now
from ouie.verify.credentials import EncryptedSecret
from ouie.verify.events import WebhookDeadLettered, WebhookDelivered
from ouie.verify.incident import IncidentChange, IncidentNotice, IncidentRef
from ouie.verify.plugin import OutputAction, OutputContext

SIGNATURE_HEADER = "X-Ouie-Signature"
TIMESTAMP_HEADER = "X-Ouie-Timestamp"
DELIVERY_HEADER = "X-Ouie-Delivery"
EVENT_HEADER = "X-Ouie-Event"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class RetryPolicy(StrictModel):
    max_attempts: int = Field(default=6, ge=1, le=50)
    initial_s: float = Field(default=1.0, ge=0.0)
    factor: float = Field(default=2.0, ge=1.0)
    max_s: float = Field(default=300.0, ge=0.0)
    jitter: float = Field(default=0.1, ge=0.0, le=1.0, description="± fraction of each delay")
    timeout_s: float = Field(default=5.0, gt=0.0, le=120.0)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_s, self.initial_s * self.factor ** (attempt - 1))
        if self.jitter and base > 0:
            base *= 1.0 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base)


def _default_changes() -> list[IncidentChange]:
    return ["created", "state_changed", "closed"]


class WebhookFilter(StrictModel):
    labels: list[EventLabel] = Field(default_factory=list, description="empty: all")
    sites: list[str] = Field(default_factory=list, description="empty: all")
    changes: list[IncidentChange] = Field(default_factory=_default_changes)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)

    def matches(self, notice: IncidentNotice) -> bool:
        incident = notice.incident
        if self.labels and incident.label not in self.labels:
            return False
        if self.sites and incident.site not in self.sites:
            return False
        if notice.change not in self.changes:
            return False
        return not (
            self.min_score is not None
            and (incident.max_score is None or incident.max_score < self.min_score)
        )


class WebhookOutput(StrictModel):
    type: Literal["webhook"] = "webhook"
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    url: str = Field(pattern=r"^https?://")
    secret_enc: EncryptedSecret | None = Field(
        default=None, description="Fernet token of the HMAC secret"
    )
    filter: WebhookFilter = Field(default_factory=WebhookFilter)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    headers: dict[str, str] = Field(default_factory=dict)
    concurrency: int = Field(default=4, ge=1, le=64)


# -- signing ------------------------------------------------------------------------------


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """For receivers: the signature matches and the timestamp is fresh."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lowered[TIMESTAMP_HEADER.lower()])
        given = lowered[SIGNATURE_HEADER.lower()]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(given, sign(secret, timestamp, body))


# -- delivery -----------------------------------------------------------------------------


class DeadLetter(StrictModel):
    output_id: str
    delivery_id: str
    url: str
    event: str
    incident_id: str
    body: str
    attempts: int
    last_error: str
    at: AwareDatetime = Field(default_factory=utc_now)


class DeadLetterStore(Protocol):
    def add(self, letter: DeadLetter) -> None: ...
    def list(self) -> list[DeadLetter]: ...


class MemoryDeadLetters:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def add(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def list(self) -> list[DeadLetter]:
        return list(self.letters)


class JsonlDeadLetters:
    """Dead letters appended to a JSON-lines file (what a hub without a database uses)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, letter: DeadLetter) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(letter.model_dump_json() + "\n")

    def list(self) -> list[DeadLetter]:
        if not self.path.exists():
            return []
        return [
            DeadLetter.model_validate_json(line)
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]


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


def incident_json(incident: IncidentRef) -> dict[str, Any]:
    return incident.model_dump(mode="json")


class WebhookAction(OutputAction):
    def __init__(self, config: WebhookOutput, ctx: OutputContext) -> None:
        self.config = config
        self.id = config.id
        self.ctx = ctx
        self.secret = ctx.decrypt_optional(config.id, config.secret_enc)
        self._client = ctx.http_client()
        self._slots = asyncio.Semaphore(config.concurrency)
        self._tasks: set[asyncio.Task[DeliveryOutcome]] = set()
        self.outcomes: list[DeliveryOutcome] = []

    def matches(self, notice: IncidentNotice) -> bool:
        return self.config.filter.matches(notice)

    async def on_incident(self, notice: IncidentNotice) -> None:
        if not self.matches(notice):
            return
        event = f"incident.{notice.change}"
        delivery_id = uuid.uuid4().hex
        body = json.dumps(
            {
                "event": event,
                "delivery_id": delivery_id,
                "sent_at": utc_now().isoformat(),
                "incident": incident_json(notice.incident),
            },
            separators=(",", ":"),
        ).encode("utf-8")
        task = asyncio.create_task(self._deliver(event, delivery_id, notice.incident.id, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, event: str, delivery_id: str, incident_id: str, body: bytes
    ) -> DeliveryOutcome:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ouie-webhook/1",
            EVENT_HEADER: event,
            DELIVERY_HEADER: delivery_id,
            **self.config.headers,
        }
        async with self._slots:
            outcome = await post_with_retries(
                self._client,
                self.config.url,
                body,
                headers,
                self.config.retry,
                secret=self.secret,
                sleep=self.ctx.sleep,
            )
        self.outcomes.append(outcome)
        if outcome.ok:
            self.ctx.audit(
                WebhookDelivered(
                    output_id=self.id,
                    delivery_id=delivery_id,
                    incident_id=incident_id,
                    attempts=outcome.attempts,
                    status=outcome.status or 0,
                    latency_ms=outcome.latency_ms,
                )
            )
        else:
            self.ctx.dead_letters.add(
                DeadLetter(
                    output_id=self.id,
                    delivery_id=delivery_id,
                    url=self.config.url,
                    event=event,
                    incident_id=incident_id,
                    body=body.decode("utf-8"),
                    attempts=outcome.attempts,
                    last_error=outcome.error,
                )
            )
            self.ctx.audit(
                WebhookDeadLettered(
                    output_id=self.id,
                    delivery_id=delivery_id,
                    incident_id=incident_id,
                    attempts=outcome.attempts,
                    last_error=outcome.error,
                )
            )
        return outcome

    async def replay(self, letter: DeadLetter) -> DeliveryOutcome:
        """Send a dead letter again (same delivery id), e.g. from the console."""
        return await self._deliver(
            letter.event, letter.delivery_id, letter.incident_id, letter.body.encode("utf-8")
        )

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        await self._client.aclose()


def build(config: WebhookOutput, ctx: OutputContext) -> WebhookAction:
    return WebhookAction(config, ctx)
