"""Generic VMS bookmark webhook (plugin ``vms_webhook``).

Video management systems that bookmark footage over HTTP get, after each camera cue, a
JSON POST::

    {"incident_id": "…", "camera_id": "<VMS camera id>", "ouie_camera_id": "…",
     "start": "<ISO 8601 UTC>", "end": "…", "label": "gunshot", "lat": …, "lon": …}

where the window runs from ``pre_s`` before the incident's first onset to ``post_s``
after it. The camera id is ``camera_map[<ouie camera id>]``, or the ouie id. Delivery uses
the webhook engine (``ouie.verify.delivery``): optional HMAC signature, retries with backoff,
dead letter.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from ouie.config.outputs import VmsWebhookOutput
from ouie.verify.cctv import CueResult
from ouie.verify.delivery import DeliveringAction, Delivery, DeliveryOutcome
from ouie.verify.events import VmsBookmarkSent
from ouie.verify.incident import IncidentRef
from ouie.verify.plugin import OutputContext
from ouie.verify.signing import DELIVERY_HEADER


class VmsWebhookAction(DeliveringAction):
    def __init__(self, config: VmsWebhookOutput, ctx: OutputContext) -> None:
        super().__init__(config.id, ctx, config.retry)
        self.config = config
        self.secret = ctx.decrypt_optional(config.id, config.secret_enc)

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
        self.spawn(self._send(incident, cue, actor))

    async def _send(self, incident: IncidentRef, cue: CueResult, actor: str) -> DeliveryOutcome:
        payload = self.payload(incident, cue)
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        delivery_id = uuid.uuid4().hex
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: delivery_id,
            **self.config.headers,
        }
        outcome = await self.deliver(
            Delivery(self.config.url, "vms.bookmark", delivery_id, incident.id, body, headers),
            self.secret,
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


def build(config: VmsWebhookOutput, ctx: OutputContext) -> VmsWebhookAction:
    return VmsWebhookAction(config, ctx)
