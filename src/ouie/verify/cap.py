"""CAP 1.2 alerts (plugin ``cap``): one OASIS Common Alerting Protocol message per change.

``render_cap`` turns an incident into a CAP 1.2 ``<alert>`` (namespace
``urn:oasis:names:tc:emergency:cap:1.2``); the tests validate every kind of message against
the CAP 1.2 XML schema. Mapping:

- ``identifier`` ``ouie-<site>-<incident>-<n>``, ``sender`` and ``senderName`` from config,
  ``sent`` in CAP's form (``YYYY-MM-DDThh:mm:ss-00:00`` for UTC; CAP forbids ``Z``);
- ``msgType``: Alert for a new incident, Update for later changes (with ``references`` to
  every earlier message, ``sender,identifier,sent``), Cancel when it was dismissed;
- ``scope`` Restricted by default (control room and police: locations are precise);
- ``info``: category, event, urgency, severity per label (``LABEL_INFO``); certainty
  Observed once confirmed, Unlikely once dismissed, Likely when several sensors heard it,
  otherwise Possible; ``onset`` the first onset; ``expires`` ``expires_after_s`` later;
- ``area``: a ``circle`` "lat,lon radius_km" with the 95 % radius (at least 10 m).

The plugin keeps the messages it rendered, so the hub can serve the latest per incident
(``latest(incident_id)``), and optionally POSTs each to ``url`` (``application/cap+xml``)
with the webhook engine's retries.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Literal

from ouie.config.outputs import CapOutput
from ouie.core.labels import EventLabel
from ouie.core.timebase import utc_now
from ouie.verify.delivery import DeliveringAction, Delivery, DeliveryOutcome
from ouie.verify.events import AlertPublished
from ouie.verify.incident import IncidentNotice, IncidentRef
from ouie.verify.plugin import OutputContext

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"

# label → (category, event, urgency, severity)
LABEL_INFO: dict[EventLabel, tuple[str, str, str, str]] = {
    EventLabel.GUNSHOT: ("Security", "Gunshot", "Immediate", "Severe"),
    EventLabel.EXPLOSION: ("Safety", "Explosion", "Immediate", "Severe"),
    EventLabel.SCREAM: ("Security", "Scream", "Immediate", "Moderate"),
    EventLabel.GLASS_BREAKING: ("Security", "Glass breaking", "Immediate", "Moderate"),
    EventLabel.VEHICLE_CRASH: ("Transport", "Vehicle crash", "Immediate", "Moderate"),
    EventLabel.CAR_ALARM: ("Security", "Car alarm", "Expected", "Minor"),
    EventLabel.SIREN: ("Other", "Siren", "Expected", "Minor"),
    EventLabel.SPRAY_CAN: ("Security", "Spray can", "Expected", "Minor"),
}


def cap_time(value: datetime) -> str:
    """CAP's dateTime form: seconds precision, numeric offset, UTC as ``-00:00``."""
    utc = value.astimezone(UTC).replace(microsecond=0)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + "-00:00"


def certainty(incident: IncidentRef) -> str:
    if incident.state in ("confirmed",):
        return "Observed"
    if incident.state in ("dismissed",):
        return "Unlikely"
    return "Likely" if incident.sensor_count >= 2 else "Possible"


def describe(incident: IncidentRef, event: str) -> str:
    """The alert's description: who heard it, how many rounds, and how well it is located
    (an approximate area says so; it is never passed off as a position)."""
    rounds = f" ({incident.rounds} rounds)" if incident.rounds > 1 else ""
    radius = max(incident.radius_m, 10.0)
    where = (
        f"approximate area of {radius:.0f} m radius, not a located position"
        if incident.approximate
        else f"location within {radius:.0f} m (95 %)"
    )
    return (
        f"{event} detected acoustically at {incident.site}{rounds} by "
        f"{incident.sensor_count} sensor(s); {where}."
    )


def render_cap(
    incident: IncidentRef,
    config: CapOutput,
    *,
    msg_type: Literal["Alert", "Update", "Cancel"] = "Alert",
    identifier: str | None = None,
    sent: datetime | None = None,
    references: list[tuple[str, datetime]] | None = None,
) -> bytes:
    """One CAP 1.2 ``<alert>`` document (UTF-8 XML with declaration)."""
    ET.register_namespace("", CAP_NS)

    def sub(parent: ET.Element, tag: str, text: str) -> ET.Element:
        node = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
        node.text = text
        return node

    sent = sent or utc_now()
    alert = ET.Element(f"{{{CAP_NS}}}alert")
    sub(alert, "identifier", identifier or f"ouie-{incident.site}-{incident.id}-1")
    sub(alert, "sender", config.sender)
    sub(alert, "sent", cap_time(sent))
    sub(alert, "status", config.status)
    sub(alert, "msgType", msg_type)
    sub(alert, "source", "ouie acoustic detection")
    sub(alert, "scope", config.scope)
    if config.scope == "Restricted":
        sub(alert, "restriction", config.restriction)
    if references:
        sub(
            alert,
            "references",
            " ".join(f"{config.sender},{ident},{cap_time(when)}" for ident, when in references),
        )
    sub(alert, "incidents", incident.id)

    category, event, urgency, severity = LABEL_INFO[incident.label]
    info = ET.SubElement(alert, f"{{{CAP_NS}}}info")
    sub(info, "language", config.language)
    sub(info, "category", category)
    sub(info, "event", event)
    sub(info, "responseType", "AllClear" if msg_type == "Cancel" else "Monitor")
    sub(info, "urgency", "Past" if msg_type == "Cancel" else urgency)
    sub(info, "severity", severity)
    sub(info, "certainty", certainty(incident))
    code = ET.SubElement(info, f"{{{CAP_NS}}}eventCode")
    sub(code, "valueName", "ouie:label")
    sub(code, "value", incident.label.value)
    sub(info, "onset", cap_time(incident.time))
    sub(info, "expires", cap_time(sent + timedelta(seconds=config.expires_after_s)))
    sub(info, "senderName", config.sender_name)
    sub(info, "headline", f"{event} detected ({incident.state})")
    sub(info, "description", describe(incident, event))
    if config.web_base_url:
        sub(info, "web", f"{config.web_base_url.rstrip('/')}/incidents/{incident.id}")
    for name, value in (
        ("ouie:state", incident.state),
        ("ouie:incident", incident.id),
        ("ouie:rounds", str(incident.rounds)),
        ("ouie:approximate", "true" if incident.approximate else "false"),
    ):
        parameter = ET.SubElement(info, f"{{{CAP_NS}}}parameter")
        sub(parameter, "valueName", name)
        sub(parameter, "value", value)
    area = ET.SubElement(info, f"{{{CAP_NS}}}area")
    what = "approximate area" if incident.approximate else "around"
    sub(area, "areaDesc", f"{incident.site}: {what} {incident.lat:.5f}, {incident.lon:.5f}")
    radius_km = max(incident.radius_m, 10.0) / 1000.0
    sub(area, "circle", f"{incident.lat:.6f},{incident.lon:.6f} {radius_km:.3f}")
    document: bytes = ET.tostring(alert, encoding="utf-8", xml_declaration=True)
    return document


class CapAction(DeliveringAction):
    def __init__(self, config: CapOutput, ctx: OutputContext) -> None:
        super().__init__(config.id, ctx, config.retry, posts=config.url is not None)
        self.config = config
        self.history: dict[str, list[tuple[str, datetime, bytes]]] = {}

    def latest(self, incident_id: str) -> bytes | None:
        messages = self.history.get(incident_id)
        return messages[-1][2] if messages else None

    async def on_incident(self, notice: IncidentNotice) -> None:
        incident = notice.incident
        earlier = self.history.setdefault(incident.id, [])
        if not earlier:
            msg_type: Literal["Alert", "Update", "Cancel"] = "Alert"
        elif incident.state == "dismissed":
            msg_type = "Cancel"
        else:
            msg_type = "Update"
        identifier = f"ouie-{incident.site}-{incident.id}-{len(earlier) + 1}-{uuid.uuid4().hex[:6]}"
        sent = utc_now()
        document = render_cap(
            incident,
            self.config,
            msg_type=msg_type,
            identifier=identifier,
            sent=sent,
            references=[(i, s) for i, s, _ in earlier],
        )
        earlier.append((identifier, sent, document))
        target = self.config.url or "history"
        self.ctx.audit(
            AlertPublished(incident_id=incident.id, output_id=self.id, channel="cap", target=target)
        )
        if self.config.url is not None:
            self.spawn(self._post(self.config.url, incident.id, document))

    async def _post(self, url: str, incident_id: str, document: bytes) -> DeliveryOutcome:
        headers = {"Content-Type": "application/cap+xml; charset=utf-8"}
        return await self.deliver(
            Delivery(url, "cap", uuid.uuid4().hex, incident_id, document, headers)
        )


def build(config: CapOutput, ctx: OutputContext) -> CapAction:
    return CapAction(config, ctx)
