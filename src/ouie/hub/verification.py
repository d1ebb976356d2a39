"""The hub's side of alarm verification (issue 8): service wiring, audit sink, incident hook.

``ouie.verify.service.VerificationService`` does the protocol work (ONVIF cueing, MAVLink
dispatch, webhooks, CAP, MQTT); this module wires it into a ``Hub``:

- ``attach(hub, service)`` makes the service the hub's (``hub.verification``) and adds
  ``IncidentHook`` to ``hub.change_listeners``; the service must have been built with
  ``audit_sink(hub)`` so that every verification event is appended to the hub's
  hash-chained audit log (``to_audit_event``);
- ``IncidentHook`` is called by ``Hub.notify_changes`` after each committed incident change
  (fusion: ``created``/``updated``; transitions: ``state_changed``/``closed``): it schedules
  ``service.on_incident`` on the hub's event loop, never blocking ingest or the request.

The API routes (camera cue, drone plan/approve/abort) are ``ouie.hub.routers.verification``;
without an attached service they answer 404 (nothing to verify with on this hub).
``build_service`` makes the service from the hub's ``verify:`` settings
(``ouie.config.hub.HubSettings.verify``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ouie.config.verify import VerifySettings, load_verify_settings
from ouie.hub import audit
from ouie.hub.db import Incident
from ouie.hub.service import Hub, IncidentChanges
from ouie.verify.events import AuditSink, VerifyEvent, to_audit_event
from ouie.verify.incident import IncidentChange, IncidentNotice, IncidentRef
from ouie.verify.service import VerificationService

log = logging.getLogger(__name__)

T = TypeVar("T")


# ----------------------------------------------------------------------------- wiring
def audit_sink(hub: Hub) -> AuditSink:
    """Appends each verification event to the hub's hash-chained log (sync, short)."""

    def sink(event: VerifyEvent) -> None:
        with hub.sessions() as session, session.begin():
            audit.record(session, to_audit_event(event))
        hub.metrics.audit_entries.inc()

    return sink


def build_service(hub: Hub, settings: VerifySettings | None = None) -> VerificationService | None:
    """A service from ``settings`` or the hub's ``verify:`` section; None when not configured."""
    if settings is None:
        section = hub.settings.verify
        if section is None:
            return None
        settings = (
            load_verify_settings(section)
            if isinstance(section, Path)
            else VerifySettings.model_validate(section)
        )
    return VerificationService(settings, audit=audit_sink(hub))


async def start_configured(hub: Hub) -> bool:
    """At hub start: build, start and attach the service of the ``verify:`` section."""
    if hub.verification is not None or hub.settings.verify is None:
        return False
    service = build_service(hub)
    if service is None:
        return False
    await service.start(warm_cameras=True)
    attach(hub, service)
    return True


@dataclass(frozen=True)
class IncidentHook:
    """The hub's change listener that hands incident changes to its attached service."""

    hub: Hub

    def __call__(self, changes: IncidentChanges) -> None:
        if self.hub.verification is not None:
            incident_hook(self.hub, changes)


def attach(hub: Hub, service: VerificationService) -> None:
    """Make ``service`` the hub's: the API routes use it, incident changes reach it."""
    hub.verification = service
    if not any(isinstance(listener, IncidentHook) for listener in hub.change_listeners):
        hub.change_listeners.append(IncidentHook(hub))


async def detach(hub: Hub) -> None:
    """Stop background verification work and close the service."""
    service, hub.verification = hub.verification, None
    hub.change_listeners[:] = [
        listener for listener in hub.change_listeners if not isinstance(listener, IncidentHook)
    ]
    tasks = list(hub.background)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if service is not None:
        await service.close()


def spawn(hub: Hub, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Run ``coro`` as the hub's background work (``detach`` cancels what is left)."""
    task = asyncio.create_task(coro)
    hub.background.add(task)
    task.add_done_callback(hub.background.discard)
    return task


def incident_refs(hub: Hub, ids: list[str]) -> dict[str, IncidentRef]:
    """What the verification service needs of each incident (those with a position)."""
    out: dict[str, IncidentRef] = {}
    with hub.sessions() as session:
        for incident_id in ids:
            row = session.get(Incident, incident_id)
            if row is None:
                continue
            try:
                out[incident_id] = IncidentRef.from_record(row)
            except (ValueError, TypeError) as exc:  # e.g. an incident without a position
                log.warning("verification: incident %s skipped: %s", incident_id, exc)
    return out


_CHANGES: dict[str, IncidentChange] = {
    "created": "created",
    "updated": "updated",
    "state_changed": "state_changed",
    "closed": "closed",
}


async def _notify(hub: Hub, changes: IncidentChanges) -> None:
    service = hub.verification
    if service is None:
        return
    refs = await asyncio.to_thread(incident_refs, hub, list(dict.fromkeys(i for i, _ in changes)))
    for incident_id, kind in changes:
        ref = refs.get(incident_id)
        if ref is None:
            continue
        change = _CHANGES.get(kind, "state_changed")
        try:
            await service.on_incident(IncidentNotice(change=change, incident=ref))
        except Exception:
            log.exception("verification: on_incident failed for %s", incident_id)


def incident_hook(hub: Hub, changes: IncidentChanges) -> None:
    """Schedule ``on_incident`` for committed changes on the hub's loop (from any thread)."""
    loop = hub.loop
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None and (loop is None or running is loop):
        spawn(hub, _notify(hub, changes))
    elif loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(lambda: spawn(hub, _notify(hub, changes)))
