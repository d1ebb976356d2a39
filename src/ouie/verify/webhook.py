"""Outbound webhooks (plugin ``webhook``): signed JSON per subscription, retries, dead letters.

Each subscription has a URL, a filter (labels, sites, kinds of change, minimum score) and
an encrypted signing secret. A matching incident change is POSTed as JSON::

    {"event": "incident.created", "delivery_id": "…", "sent_at": "…", "incident": {…}}

with headers ``X-Ouie-Event``, ``X-Ouie-Delivery`` (the same id on every retry: receivers
deduplicate on it), ``X-Ouie-Timestamp`` (Unix seconds) and
``X-Ouie-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``
(``ouie.verify.signing``; ``verify_signature`` is the receiver's check).

Delivery (``ouie.verify.delivery``): 2xx is success; network errors, timeouts, 408, 429 and
5xx are retried with backoff; after ``max_attempts`` tries, or a final refusal, the delivery
goes to the dead-letter store with its last error (``WebhookDeadLettered``; the console
lists them and can replay them). Deliveries run as background tasks, at most
``concurrency`` at a time.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from ouie.config.outputs import WebhookFilter, WebhookOutput
from ouie.core.timebase import utc_now
from ouie.verify.dead_letters import DeadLetter
from ouie.verify.delivery import DeliveringAction, Delivery, DeliveryOutcome
from ouie.verify.events import WebhookDeadLettered, WebhookDelivered
from ouie.verify.incident import IncidentNotice, IncidentRef
from ouie.verify.plugin import OutputContext
from ouie.verify.signing import DELIVERY_HEADER, EVENT_HEADER


def matches(rule: WebhookFilter, notice: IncidentNotice) -> bool:
    """Whether a subscription with filter ``rule`` is told about ``notice``."""
    incident = notice.incident
    if rule.labels and incident.label not in rule.labels:
        return False
    if rule.sites and incident.site not in rule.sites:
        return False
    if notice.change not in rule.changes:
        return False
    return not (
        rule.min_score is not None
        and (incident.max_score is None or incident.max_score < rule.min_score)
    )


def incident_json(incident: IncidentRef) -> dict[str, Any]:
    return incident.model_dump(mode="json")


class WebhookAction(DeliveringAction):
    def __init__(self, config: WebhookOutput, ctx: OutputContext) -> None:
        super().__init__(config.id, ctx, config.retry)
        self.config = config
        self.secret = ctx.decrypt_optional(config.id, config.secret_enc)
        self._slots = asyncio.Semaphore(config.concurrency)
        self.outcomes: list[DeliveryOutcome] = []

    def matches(self, notice: IncidentNotice) -> bool:
        return matches(self.config.filter, notice)

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
        self.spawn(self._deliver(event, delivery_id, notice.incident.id, body))

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
        delivery = Delivery(self.config.url, event, delivery_id, incident_id, body, headers)
        async with self._slots:
            outcome = await self.deliver(delivery, self.secret)
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


def build(config: WebhookOutput, ctx: OutputContext) -> WebhookAction:
    return WebhookAction(config, ctx)
