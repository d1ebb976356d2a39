"""Generic VMS bookmark webhook (plugin ``vms_webhook``).

Video management systems that bookmark footage over HTTP get, after each camera cue, a
JSON POST::

    {"incident_id": "…", "camera_id": "<VMS camera id>", "ouie_camera_id": "…",
     "start": "<ISO 8601 UTC>", "end": "…", "label": "gunshot", "lat": …, "lon": …}

where the window runs from ``pre_s`` before the incident's first onset to ``post_s``
after it. The camera id is ``camera_map[<ouie camera id>]``, or the ouie id. Delivery uses
the webhook engine: optional HMAC signature, retries with backoff, dead letter.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Literal

from pydantic import Field

from ouie.core.model_base import StrictModel
from ouie.verify.cctv import CueResult
from ouie.verify.credentials import EncryptedSecret
from ouie.verify.events import VmsBookmarkSent
from ouie.verify.incident import IncidentRef
from ouie.verify.plugin import OutputAction, OutputContext
from ouie.verify.webhook import (
    DELIVERY_HEADER,
    DeadLetter,
    DeliveryOutcome,
    RetryPolicy,
    post_with_retries,
)


class VmsWebhookOutput(StrictModel):
    type: Literal["vms_webhook"] = "vms_webhook"
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    url: str = Field(pattern=r"^https?://")
    pre_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    post_s: float = Field(default=120.0, ge=0.0, le=3600.0)
    camera_map: dict[str, str] = Field(
        default_factory=dict, description="ouie camera id → VMS camera id (overrides)"
    )
    secret_enc: EncryptedSecret | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=lambda: RetryPolicy(max_attempts=4))


class VmsWebhookAction(OutputAction):
    def __init__(self, config: VmsWebhookOutput, ctx: OutputContext) -> None:
        self.config = config
        self.id = config.id
        self.ctx = ctx
        self.secret = ctx.decrypt_optional(config.id, config.secret_enc)
        self._client = ctx.http_client()
        self._tasks: set[asyncio.Task[DeliveryOutcome]] = set()

    def payload(self, incident: IncidentRef, cue: CueResult) -> dict[str, object]:
        start = incident.time - timedelta(seconds=self.config.pre_s)
        end = incident.time + timedelta(seconds=self.config.post_s)
        return {
            "incident_id": incident.id,
            "camera_id": self.config.camera_map.get(cue.camera_id, cue.camera_id),
            "ouie_camera_id": cue.camera_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "label": incident.label.value,
            "lat": incident.lat,
            "lon": incident.lon,
        }

    async def on_cue(self, incident: IncidentRef, cue: CueResult, actor: str) -> None:
        task = asyncio.create_task(self._send(incident, cue, actor))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, incident: IncidentRef, cue: CueResult, actor: str) -> DeliveryOutcome:
        payload = self.payload(incident, cue)
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        delivery_id = uuid.uuid4().hex
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: delivery_id,
            **self.config.headers,
        }
        outcome = await post_with_retries(
            self._client,
            self.config.url,
            body,
            headers,
            self.config.retry,
            secret=self.secret,
            sleep=self.ctx.sleep,
        )
        if not outcome.ok:
            self.ctx.dead_letters.add(
                DeadLetter(
                    output_id=self.id,
                    delivery_id=delivery_id,
                    url=self.config.url,
                    event="vms.bookmark",
                    incident_id=incident.id,
                    body=body.decode("utf-8"),
                    attempts=outcome.attempts,
                    last_error=outcome.error,
                )
            )
        self.ctx.audit(
            VmsBookmarkSent(
                actor=actor,
                incident_id=incident.id,
                output_id=self.id,
                camera_id=str(payload["camera_id"]),
                start=incident.time - timedelta(seconds=self.config.pre_s),
                end=incident.time + timedelta(seconds=self.config.post_s),
                delivered=outcome.ok,
                status=outcome.status,
            )
        )
        return outcome

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        await self._client.aclose()


def build(config: VmsWebhookOutput, ctx: OutputContext) -> VmsWebhookAction:
    return VmsWebhookAction(config, ctx)
