"""The hub as one object: storage, ingest workers, fusion, live updates, retention.

``Hub`` is the composition root of the ``hub`` role. ``ouie hub`` wraps it in the HTTP
server (``ouie.hub.api.create_app``; with the console, ``ouie.web.app.create_hub_app``);
``ouie demo`` and tests build one around an ``InProcBus`` so nodes and hub share a process
without a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ouie.config.hub import HubSettings
from ouie.core.labels import EventLabel
from ouie.core.messages import OnsetRequestMessage, ThresholdConfigMessage, topic_for
from ouie.core.timebase import utc_now
from ouie.hub import anchor, audit, experiment
from ouie.hub.association import ONSET_MIN_SENSORS
from ouie.hub.db import Incident, Sensor, Shot, make_engine, migrate, session_factory
from ouie.hub.fusion import Fuser, IncidentChange, OnsetAsk
from ouie.hub.fusion_rows import epoch
from ouie.hub.ingest import BatchProcessor, Envelope, IngestWorker, Validator
from ouie.hub.live import Broadcaster
from ouie.hub.metrics import HubMetrics
from ouie.hub.mqtt import MqttIngest
from ouie.hub.pki import config_signing_key
from ouie.hub.registry import SensorRegistry
from ouie.hub.retention import run_retention
from ouie.hub.schemas import IncidentSummary
from ouie.transport.inproc import InProcBus, Subscription
from ouie.transport.signing import SigningKey

if TYPE_CHECKING:
    from ouie.verify.service import VerificationService

log = logging.getLogger(__name__)

#: committed incident changes: ``(incident id, "created"|"updated"|"state_changed"|"closed")``
IncidentChanges = list[tuple[str, str]]
#: called with each batch of committed changes; must not block (it runs on ingest's path)
ChangeListener = Callable[[IncidentChanges], None]
#: An onset request waits this long after the commit that asked for it: the other
#: classifying sensors' detections of a shot usually follow its first one within it, and a
#: shot they bring to 4 sensors needs no onsets (the request is then not sent at all).
ONSET_ASK_DELAY_S = 0.5
#: ... the shot it was for: the incident's shot whose first arrival is this close to it.
ONSET_SHOT_MATCH_S = 0.5


class Hub:
    def __init__(self, settings: HubSettings, bus: InProcBus | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.engine = make_engine(settings.database.url)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        self.registry = SensorRegistry(settings.fusion.source_height_m)
        self.metrics = HubMetrics()
        self.metrics.add_db_collector(self._db_gauges)
        self.fuser = Fuser(settings.fusion, self.registry)
        self.validator = Validator(settings.ingest, self.registry)
        self.processor = BatchProcessor(self.sessions, self.validator, self.fuser, settings.ingest)
        self.live = Broadcaster()
        self.worker = IngestWorker(
            self.processor,
            self.metrics,
            batch_size=settings.database.batch_size,
            batch_wait_ms=settings.database.batch_wait_ms,
            on_changes=self._on_changes,
            on_onset_asks=self._on_onset_asks,
        )
        self.mqtt: MqttIngest | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._bus_subs: list[Subscription] = []
        self.started = False
        self._bus_inflight = 0
        # issue 8: verification actions, attached by ``ouie.hub.verification.attach``, which
        # also adds its incident listener: the hub calls listeners and never imports them
        self.verification: VerificationService | None = None
        self.change_listeners: list[ChangeListener] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.background: set[asyncio.Task[Any]] = set()
        # issue 18: the key that signs the audit head (``audit.anchor_key``), loaded by prepare
        self.anchor_key: anchor.AnchorKey | None = None
        # issue 18: the key that signs threshold configs (``identity``), loaded by prepare
        self.config_key: SigningKey | None = None
        # issue 20: a production experiment's end (``experiment_check``); at the end the hub
        # purges, sets ``experiment_over`` and calls ``stop_requests`` (the server exits)
        self.experiment_ends_at: datetime | None = None
        self.experiment_over = False
        self.stop_requests: list[Callable[[str], None]] = []

    # -- lifecycle -------------------------------------------------------------------
    def prepare(self) -> None:
        """Migrate (if configured) and load the sensor registry; no event loop needed."""
        if self.settings.database.migrate:
            migrate(self.engine)
        self.reload_sensors()
        key_path = self.settings.audit.anchor_key
        if key_path is not None and self.anchor_key is None:
            self.anchor_key = anchor.AnchorKey.load(key_path)  # a missing key stops the start
        if self.config_key is None:
            self.config_key = config_signing_key(self.settings.identity)

    async def start(self) -> None:
        if self.started:
            return
        await asyncio.to_thread(self.prepare)
        await asyncio.to_thread(self.experiment_gate)
        self.loop = asyncio.get_running_loop()
        self.worker.start()
        if self.bus is not None:
            for topic_filter in (
                "ouie/v1/+/+/events",
                "ouie/v1/+/+/status",
                "ouie/v1/+/+/onsets",
            ):
                sub = self.bus.subscribe(topic_filter)
                self._bus_subs.append(sub)
                self._tasks.append(asyncio.create_task(self._follow_bus(sub)))
        if self.settings.mqtt.enabled:
            self.mqtt = MqttIngest(self.settings.mqtt, self.worker.submit)
            self._tasks.append(asyncio.create_task(self.mqtt.run(), name="ouie-hub-mqtt"))
        self._tasks.append(asyncio.create_task(self._retention_loop(), name="ouie-hub-retention"))
        if self.anchor_key is not None:
            self._tasks.append(asyncio.create_task(self._anchor_loop(), name="ouie-hub-anchor"))
        if self.experiment_ends_at is not None:
            self._tasks.append(
                asyncio.create_task(self._experiment_loop(), name="ouie-hub-experiment")
            )
        self.started = True

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for sub in self._bus_subs:
            sub.close()
        self._bus_subs.clear()
        await self.worker.stop(drain=True)
        self.started = False

    def close(self) -> None:
        self.engine.dispose()

    async def _follow_bus(self, sub: Subscription) -> None:
        async for message in sub:
            self._bus_inflight += 1
            try:
                await self.worker.submit(
                    Envelope(source="bus", topic=message.topic, payload=message.payload)
                )
            finally:
                self._bus_inflight -= 1

    async def submit(self, envelope: Envelope) -> None:
        await self.worker.submit(envelope)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until all messages received so far (bus included) are committed."""
        for _ in range(3):
            await asyncio.sleep(0)
        while any(sub.pending() for sub in self._bus_subs) or self._bus_inflight:
            await asyncio.sleep(0.005)
        await self.worker.drain(timeout_s)
        if self.background:  # onset requests of the last batch: sent before "drained"
            await asyncio.wait(set(self.background), timeout=timeout_s)

    # -- helpers used by the API and CLI ----------------------------------------------
    def reload_sensors(self) -> None:
        with self.sessions() as session:
            self.registry.load(session)

    def _on_changes(self, changes: list[IncidentChange]) -> None:
        self.notify_changes([(change.incident_id, change.kind) for change in changes])
        if not self.live.subscribers:
            return
        ids = list({change.incident_id for change in changes})
        with self.sessions() as session:
            rows = session.execute(select(Incident).where(Incident.id.in_(ids))).scalars().all()
            by_id = {row.id: IncidentSummary.of(row) for row in rows}
        for change in changes:
            summary = by_id.get(change.incident_id)
            if summary is not None:
                self.publish_incident(summary, change.kind)

    def _on_onset_asks(self, asks: list[OnsetAsk]) -> None:
        """Send the onset requests a committed batch asked for (on the event loop)."""
        task = asyncio.get_running_loop().create_task(self.send_onset_requests(asks))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def send_onset_requests(
        self, asks: list[OnsetAsk], delay_s: float = ONSET_ASK_DELAY_S
    ) -> int:
        """Ask sensors for their impulse onsets (docs/hub.md, "Onsets on request"), signed
        with the hub's config key when it has one, after ``delay_s`` and only for shots that
        still have fewer than 4 sensors; audits what it asks. Returns how many went out."""
        if delay_s > 0.0:
            await asyncio.sleep(delay_s)
        asks = await asyncio.to_thread(self._still_wanted, asks)
        sent = 0
        for ask in asks:
            message = OnsetRequestMessage(
                site=ask.site,
                sensor_id=ask.sensor_id,
                issued_at=utc_now(),
                start=epoch(ask.start),
                end=epoch(ask.end),
                incident_id=ask.incident_id,
            )
            if self.config_key is not None:
                message = self.config_key.sign_message(message)
            topic = topic_for(ask.site, ask.sensor_id, "onset-request")
            payload = message.model_dump_json().encode("utf-8")
            if self.bus is not None:
                await self.bus.publish(topic, payload)
                sent += 1
            if self.mqtt is not None and await self.mqtt.publish_request(topic, payload):
                sent += 1
        self.metrics.onset_requests.inc(sent)
        return sent

    def _still_wanted(self, asks: list[OnsetAsk]) -> list[OnsetAsk]:
        """The asks whose shot still needs onsets (its incident open, the shot under 4
        sensors), each incident's audited as ``onsets.requested``."""
        ids = sorted({ask.incident_id for ask in asks})
        wanted: list[OnsetAsk] = []
        with self.sessions() as session, session.begin():
            shots: dict[str, list[tuple[float, int]]] = {}
            rows = session.execute(
                select(Shot.incident_id, Shot.first_onset, Shot.sensor_count)
                .join(Incident, Incident.id == Shot.incident_id)
                .where(Shot.incident_id.in_(ids), Incident.state != "closed")
            ).all()
            for incident_id, first_onset, sensor_count in rows:
                shots.setdefault(incident_id, []).append((first_onset.timestamp(), sensor_count))
            for ask in asks:
                near = [
                    (abs(t - ask.shot_time), n)
                    for t, n in shots.get(ask.incident_id, [])
                    if abs(t - ask.shot_time) <= ONSET_SHOT_MATCH_S
                ]
                if near and min(near)[1] < ONSET_MIN_SENSORS:
                    wanted.append(ask)
            by_incident: dict[str, list[OnsetAsk]] = {}
            for ask in wanted:
                by_incident.setdefault(ask.incident_id, []).append(ask)
            audit.record(
                session,
                *(
                    audit.AuditEvent(
                        actor="system",
                        action="onsets.requested",
                        object_type="incident",
                        object_id=incident_id,
                        detail={
                            "sensors": sorted(a.sensor_id for a in group),
                            "shot_time": epoch(group[0].shot_time).isoformat(),
                        },
                    )
                    for incident_id, group in sorted(by_incident.items())
                ),
            )
        return wanted

    def notify_changes(self, changes: IncidentChanges) -> None:
        """Hand committed incident changes to the listeners (the verification service's
        webhooks, CAP, MQTT and auto-cue when one is attached). Never blocks; callable from
        any thread."""
        if not changes:
            return
        for listener in list(self.change_listeners):
            listener(changes)

    def publish_incident(self, summary: IncidentSummary, kind: str = "updated") -> None:
        """Send ``incident.<kind>`` to the live stream's subscribers (JSON-ready data)."""
        self.live.publish({"type": f"incident.{kind}", "incident": summary.model_dump(mode="json")})

    def record_read(
        self, session: Session, actor: str, action: str, object_id: str, **detail: Any
    ) -> None:
        """Audit a read of incident data (API and console alike) and count it."""
        audit.record(session, audit.AuditEvent(actor, action, "incident", object_id, detail))
        self.metrics.audit_entries.inc()

    async def publish_thresholds(
        self, site: str, sensor_id: str, thresholds: dict[str, float]
    ) -> None:
        message = ThresholdConfigMessage(
            site=site,
            sensor_id=sensor_id,
            issued_at=utc_now(),
            thresholds={EventLabel(k): v for k, v in thresholds.items()},
        )
        if self.config_key is not None:  # a node holding the hub's public key needs this
            message = self.config_key.sign_message(message)
        topic = topic_for(site, sensor_id, "config")
        payload = message.model_dump_json().encode("utf-8")
        if self.bus is not None:
            await self.bus.publish(topic, payload, retain=True)
        if self.mqtt is not None:
            await self.mqtt.publish_config(topic, payload)

    def retention_once(
        self, now: datetime | None = None, actor: str = "system"
    ) -> dict[str, dict[str, int]]:
        with self.sessions() as session, session.begin():
            report = run_retention(session, self.settings.retention, now or utc_now(), actor)
        for site in report.values():
            self.metrics.retention_deleted.labels(table="detections").inc(site["detections"])
            self.metrics.retention_deleted.labels(table="incidents").inc(site["incidents"])
            self.metrics.retention_deleted.labels(table="impulse_onsets").inc(site["impulses"])
        return report

    async def _retention_loop(self) -> None:
        while True:
            try:
                report = await asyncio.to_thread(self.retention_once)
                log.info("retention: %s", report)
            except Exception:
                log.exception("retention run failed; will retry")
            await asyncio.sleep(self.settings.retention.interval_s)

    # -- bounded experiment (issue 20) ------------------------------------------------------
    def experiment_gate(self, now: datetime | None = None) -> None:
        """Production with ``compliance.experiment``: declare it in the audit log once; past
        the end in force, purge and raise; with an unaudited extension, raise.
        ``ExperimentError`` stops the start (the server exits non-zero)."""
        compliance = self.settings.compliance
        if not compliance.production or compliance.experiment is None:
            return
        moment = now or utc_now()
        with self.sessions() as session, session.begin():
            verdict = experiment.gate(session, compliance, moment)
        if verdict is None:
            return
        self.experiment_ends_at = verdict.ends_at
        if moment >= verdict.ends_at:
            self.end_experiment(moment)
        if verdict.problem is not None:
            raise experiment.ExperimentError(verdict.problem)

    def end_experiment(
        self, now: datetime | None = None, actor: str = "system"
    ) -> experiment.PurgeReport:
        """Delete every detection and incident (audited) and ask the server to stop."""
        with self.sessions() as session, session.begin():
            report = experiment.purge_all(session, now or utc_now(), actor)
        log.warning("experiment ended: purged %s; the hub stops", report.model_dump())
        self.experiment_over = True
        for request in self.stop_requests:
            request("the experiment has ended")
        return report

    def experiment_check(self, now: datetime | None = None) -> bool:
        """True once the experiment is over (purging at the first call past its end)."""
        if self.experiment_over:
            return True
        if self.experiment_ends_at is None or (now or utc_now()) < self.experiment_ends_at:
            return False
        self.end_experiment(now)
        return True

    async def _experiment_loop(self) -> None:
        assert self.experiment_ends_at is not None
        while (left := (self.experiment_ends_at - utc_now()).total_seconds()) > 0:
            await asyncio.sleep(min(left, 60.0))  # wakes often: the clock may be corrected
        # stop taking events first, so that nothing is stored after the purge
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current and task.get_name() != "ouie-hub-retention":
                task.cancel()
        for sub in self._bus_subs:
            sub.close()
        await self.worker.drain()
        await asyncio.to_thread(self.experiment_check)

    # -- audit anchoring (issue 18) ---------------------------------------------------------
    def anchor_once(self, now: datetime | None = None) -> anchor.SignedHead | None:
        """Sign the audit head if it changed since the last anchor; append the anchor to
        ``audit.anchor_log`` once committed. None without a key or without a new head."""
        if self.anchor_key is None:
            return None
        with self.sessions() as session, session.begin():
            signed = anchor.anchor_now(session, self.anchor_key, now or utc_now())
        if signed is not None and self.settings.audit.anchor_log is not None:
            anchor.append_log(self.settings.audit.anchor_log, signed)
        return signed

    async def _anchor_loop(self) -> None:
        while True:
            try:
                signed = await asyncio.to_thread(self.anchor_once)
                if signed is not None:
                    log.info("audit head %d anchored (%s)", signed.seq, signed.hash[:16])
            except Exception:
                log.exception("audit anchoring failed; will retry")
            await asyncio.sleep(self.settings.audit.anchor_interval_s)

    def anchor_publication(self) -> anchor.AnchorPublication:
        """The signed heads the public page and ``/api/v1/public/audit-anchor`` show."""
        with self.sessions() as session:
            return anchor.publication(session, self.anchor_key)

    def _db_gauges(self) -> tuple[dict[str, int], list[tuple[str, str, str, float]]]:
        now = utc_now()
        stale = self.settings.ingest.stale_after_s
        with self.sessions() as session:
            states = {
                state: int(n)
                for state, n in session.execute(
                    select(Incident.state, func.count()).group_by(Incident.state)
                ).all()
            }
            sensors = []
            for site, sensor_id, health, seen in session.execute(
                select(Sensor.site, Sensor.sensor_id, Sensor.health, Sensor.last_seen_at)
            ).all():
                age = (now - seen).total_seconds() if seen is not None else float("inf")
                sensors.append((site, sensor_id, "offline" if age > stale else health, age))
        return states, sensors

    def audit_verify(self) -> audit.VerifyResult:
        with self.sessions() as session:
            return audit.verify(session)
