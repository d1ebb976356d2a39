"""Ingest: raw messages from any transport → validated rows, committed in batches.

Every transport (MQTT, HTTP, the in-process bus) hands the hub an ``Envelope``: topic,
payload bytes, and an ``ack`` to call once the message is safely stored. ``IngestWorker``
collects envelopes into batches and, in one database transaction per batch,

1. parses and validates each payload against the versioned schema (``EventMessage`` /
   ``StatusMessage`` / ``ImpulseOnsetMessage``, a sensor's answer to an onset request),
   checks the topic matches the payload, the sensor is registered and
   the clock is sane (onset not in the future, not too old, offset after onset);
2. drops duplicates by ``message_id`` (within the batch and against the database);
3. fuses the events into incidents (``ouie.hub.fusion``) and inserts the detections;
4. records each rejected message in ``dead_letters`` with its reason;

then commits, and only then acknowledges the envelopes. A failing batch is retried (the
database may be briefly away); a message that makes processing itself fail is isolated by
reprocessing the batch one message at a time and dead-lettered as ``internal_error``.
Nothing a sender can put in a payload stops the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ouie.config.hub import IngestSettings
from ouie.core.messages import EventMessage, ImpulseOnsetMessage, StatusMessage
from ouie.core.timebase import utc_now
from ouie.hub.db import DeadLetter, Detection, ImpulseOnsetRow, Sensor
from ouie.hub.fusion import Fuser, IncidentChange, OnsetAsk, PendingDetection
from ouie.hub.metrics import HubMetrics
from ouie.hub.registry import SensorInfo, SensorRegistry
from ouie.hub.trust import ReplayGuard, attribute, authenticity, count_rejections

log = logging.getLogger(__name__)

Source = Literal["mqtt", "http", "bus"]


@dataclass
class Envelope:
    source: Source
    topic: str
    payload: bytes
    received_at: datetime = field(default_factory=utc_now)
    ack: Callable[[], None] | None = None
    #: HTTP ingest waits on this: "accepted", "duplicate" or "rejected:<reason>".
    outcome: asyncio.Future[str] | None = None
    #: The sensor an HTTP bearer token proved; the payload must name the same one.
    authenticated_sensor: tuple[str, str] | None = None
    #: Called with the outcome after the commit, like ``outcome``: MQTT ingest sends the
    #: node its receipt from here, so the node keeps the message until it is stored.
    confirm: Callable[[str], None] | None = None


@dataclass(frozen=True)
class Reject:
    reason: str
    detail: str


@dataclass
class Parsed:
    message: EventMessage | StatusMessage | ImpulseOnsetMessage
    sensor: SensorInfo


@dataclass
class BatchResult:
    outcomes: list[str]
    changes: list[IncidentChange]
    accepted_events: int = 0
    accepted_status: int = 0
    accepted_onsets: int = 0
    duplicates: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    fusion_s: float = 0.0
    #: seconds per stage: validate, dedupe, fuse, write, commit (for ``ouie bench hub``)
    stages: dict[str, float] = field(default_factory=dict)
    #: onset requests to send now that the batch is committed
    onset_asks: list[OnsetAsk] = field(default_factory=list)


def _topic_parts(topic: str) -> tuple[str, str, str] | None:
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "ouie" or parts[1] != "v1":
        return None
    return parts[2], parts[3], parts[4]


class Validator:
    """Payload bytes → a message for a registered sensor, or the reason it is refused."""

    def __init__(self, settings: IngestSettings, registry: SensorRegistry) -> None:
        self.settings = settings
        self.registry = registry

    def parse(self, envelope: Envelope, session: Session | None = None) -> Parsed | Reject:
        s = self.settings
        if len(envelope.payload) > s.max_payload_bytes:
            return Reject("too_large", f"{len(envelope.payload)} bytes")
        try:
            data = json.loads(envelope.payload)
        except (ValueError, RecursionError) as exc:
            return Reject("not_json", str(exc)[:200])
        if not isinstance(data, dict):
            return Reject("invalid", "payload is not a JSON object")
        kind = data.get("kind")
        model: type[EventMessage] | type[StatusMessage] | type[ImpulseOnsetMessage]
        if kind == "event":
            model = EventMessage
        elif kind == "status":
            model = StatusMessage
        elif kind == "impulse_onset":
            model = ImpulseOnsetMessage
        else:
            return Reject("unknown_kind", f"kind {str(kind)[:40]!r}")
        if data.get("schema_version") != 1:
            return Reject(
                "schema_version", f"schema_version {str(data.get('schema_version'))[:20]}"
            )
        try:
            message = model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return Reject("invalid", f"{where}: {first['msg']}"[:300])
        expected_kind = {"event": "events", "status": "status"}.get(str(kind), "onsets")
        if envelope.topic:
            parts = _topic_parts(envelope.topic)
            if parts is None or parts != (message.site, message.sensor_id, expected_kind):
                return Reject("topic_mismatch", f"topic {envelope.topic[:120]!r}")
        if envelope.authenticated_sensor is not None and envelope.authenticated_sensor != (
            message.site,
            message.sensor_id,
        ):
            return Reject("wrong_sensor", "payload names another sensor than the token")
        sensor = self.registry.get(message.site, message.sensor_id)
        if sensor is None and session is not None and self.registry.maybe_reload(session):
            sensor = self.registry.get(message.site, message.sensor_id)
        if sensor is None:
            return Reject("unknown_sensor", f"{message.site}/{message.sensor_id}")
        now = envelope.received_at
        # before the content checks: a forgery is reported as one, whatever else it claims
        refused = authenticity(s, sensor, data, message, now)
        if refused is not None:
            return Reject(refused.reason, refused.detail)
        if isinstance(message, EventMessage):
            numbers = (message.peak_score, message.level_dbfs, message.level_db_spl or 0.0)
            if not all(math.isfinite(value) for value in numbers):
                return Reject("invalid", "non-finite level or score")
            if message.onset > now + timedelta(seconds=s.max_future_s):
                return Reject("clock_future", f"onset {message.onset.isoformat()} after {now}")
            if message.onset < now - timedelta(seconds=s.max_age_s):
                return Reject("clock_stale", f"onset {message.onset.isoformat()} too old")
            duration = (message.offset - message.onset).total_seconds()
            if duration < 0 or duration > s.max_event_duration_s:
                return Reject("bad_times", f"offset - onset = {duration:.3f} s")
        elif message.sent_at > now + timedelta(seconds=s.max_future_s):
            return Reject("clock_future", f"sent_at {message.sent_at.isoformat()}")
        elif isinstance(message, ImpulseOnsetMessage) and message.onset is not None:
            if message.onset > now + timedelta(seconds=s.max_future_s):
                return Reject("clock_future", f"onset {message.onset.isoformat()} after {now}")
            if message.onset < now - timedelta(seconds=s.max_age_s):
                return Reject("clock_stale", f"onset {message.onset.isoformat()} too old")
            if message.level_dbfs is None or message.prominence_db is None:
                return Reject("invalid", "an onset without its level and prominence")
        return Parsed(message, sensor)


def _printable(payload: bytes, limit: int = 2048) -> str:
    return payload[:limit].decode("utf-8", errors="backslashreplace")


class BatchProcessor:
    """The synchronous, transactional part of ingest (runs in a worker thread)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        validator: Validator,
        fuser: Fuser,
        settings: IngestSettings,
    ) -> None:
        self.sessions = sessions
        self.validator = validator
        self.fuser = fuser
        self.settings = settings

    def process(self, envelopes: Sequence[Envelope]) -> BatchResult:
        with self.sessions() as session:
            with session.begin():
                result = self._process(session, envelopes)
                commit_start = time.perf_counter()
            result.stages["commit"] = time.perf_counter() - commit_start
            return result

    def _process(self, session: Session, envelopes: Sequence[Envelope]) -> BatchResult:
        now = utc_now()
        result = BatchResult(outcomes=["" for _ in envelopes], changes=[])
        dead: list[dict[str, Any]] = []
        events: list[tuple[int, Parsed, EventMessage]] = []
        status_items: list[tuple[int, Parsed, StatusMessage]] = []
        statuses: dict[int, tuple[Parsed, StatusMessage]] = {}
        onset_items: list[tuple[int, Parsed, ImpulseOnsetMessage]] = []
        refused: list[tuple[int, str, str]] = []  # (sensor pk, reason, detail)

        def reject(index: int, envelope: Envelope, why: Reject) -> None:
            result.outcomes[index] = f"rejected:{why.reason}"
            result.rejects[why.reason] = result.rejects.get(why.reason, 0) + 1
            blamed = attribute(self.validator.registry, envelope.topic)
            if blamed is not None:
                refused.append((blamed.pk, why.reason, why.detail))
            dead.append(
                {
                    "received_at": envelope.received_at,
                    "source": envelope.source,
                    "topic": envelope.topic[:256],
                    "reason": why.reason,
                    "detail": why.detail,
                    "payload": _printable(envelope.payload),
                }
            )

        mark = time.perf_counter()
        for index, envelope in enumerate(envelopes):
            parsed = self.validator.parse(envelope, session)
            if isinstance(parsed, Reject):
                reject(index, envelope, parsed)
            elif isinstance(parsed.message, EventMessage):
                events.append((index, parsed, parsed.message))
            elif isinstance(parsed.message, ImpulseOnsetMessage):
                onset_items.append((index, parsed, parsed.message))
            else:
                status_items.append((index, parsed, parsed.message))

        mark = self._stage(result, "validate", mark)
        # duplicates: within the batch, then against stored detections
        seen: set[str] = set()
        unique: list[tuple[int, Parsed, EventMessage]] = []
        for item in events:
            if item[2].message_id in seen:
                result.outcomes[item[0]] = "duplicate"
                result.duplicates += 1
            else:
                seen.add(item[2].message_id)
                unique.append(item)
        if seen:
            stored = set(
                session.execute(
                    select(Detection.message_id).where(Detection.message_id.in_(list(seen)))
                ).scalars()
            )
            if stored:
                kept = []
                for item in unique:
                    if item[2].message_id in stored:
                        result.outcomes[item[0]] = "duplicate"
                        result.duplicates += 1
                    else:
                        kept.append(item)
                unique = kept

        # Replays (ouie.hub.trust): only for sensors with a key, whose messages are proven
        # to be theirs; in sequence / sent_at order, so a batch that arrived reordered passes.
        keyed = {p.sensor.pk for _, p, _ in [*unique, *status_items] if p.sensor.keyed}
        guard = ReplayGuard(session, keyed)
        if keyed:
            replayed: set[int] = set()
            for index, parsed, message in sorted(
                (item for item in unique if item[1].sensor.keyed),
                key=lambda item: (item[1].sensor.pk, item[2].sequence),
            ):
                refusal = guard.admit_event(parsed.sensor.pk, message)
                if refusal is not None:
                    reject(index, envelopes[index], Reject(refusal.reason, refusal.detail))
                    replayed.add(index)
            unique = [item for item in unique if item[0] not in replayed]
        for index, parsed, status in status_items:
            if not parsed.sensor.keyed:  # the last one of the batch wins, as it always did
                statuses[parsed.sensor.pk] = (parsed, status)
                result.outcomes[index] = "accepted"
                result.accepted_status += 1
        for index, parsed, status in sorted(
            (item for item in status_items if item[1].sensor.keyed),
            key=lambda item: item[2].sent_at,
        ):
            verdict = guard.admit_status(parsed.sensor.pk, status)
            if verdict == "duplicate":
                result.outcomes[index] = "duplicate"
                result.duplicates += 1
            elif verdict is not None and not isinstance(verdict, str):
                reject(index, envelopes[index], Reject(verdict.reason, verdict.detail))
            else:
                statuses[parsed.sensor.pk] = (parsed, status)
                result.outcomes[index] = "accepted"
                result.accepted_status += 1

        mark = self._stage(result, "dedupe", mark)
        pending: list[PendingDetection] = []
        last_seen: dict[int, tuple[datetime, int]] = {}
        for index, parsed, message in unique:
            pending.append(
                PendingDetection(
                    row={
                        "message_id": message.message_id,
                        "sensor_pk": parsed.sensor.pk,
                        "site": message.site,
                        "sensor_id": message.sensor_id,
                        "label": message.label.value,
                        "onset": message.onset,
                        "offset": message.offset,
                        "peak_score": message.peak_score,
                        "level_dbfs": message.level_dbfs,
                        "level_db_spl": message.level_db_spl,
                        "model_id": message.model_id,
                        "speech_present": message.speech_present,
                        "sequence": message.sequence,
                        "received_at": envelopes[index].received_at,
                        "source": envelopes[index].source,
                    },
                    sensor=parsed.sensor,
                )
            )
            result.outcomes[index] = "accepted"
            previous = last_seen.get(parsed.sensor.pk)
            if previous is None or message.sequence > previous[1]:
                last_seen[parsed.sensor.pk] = (envelopes[index].received_at, message.sequence)
        result.accepted_events = len(pending)
        reported = self._store_onsets(session, envelopes, onset_items, result)

        if pending or reported:
            start = time.perf_counter()
            result.changes = self.fuser.fuse(session, pending, now, reported, result.onset_asks)
            result.fusion_s = time.perf_counter() - start
            session.flush()
            mark = self._stage(result, "fuse", mark)
            rows = []
            for detection in pending:
                row = dict(detection.row)
                row["incident_id"] = detection.incident_id
                row["fused_as"] = detection.fused_as
                row["shot_number"] = detection.shot_number
                rows.append(row)
            if rows:
                session.execute(insert(Detection), rows)

        if last_seen:
            # one executemany (ORM bulk update by primary key) for all sensors of the batch;
            # a keyed sensor's sequence marks come from its replay window (a late event
            # stored now must not lower them)
            session.execute(
                update(Sensor),
                [
                    {"id": pk, "last_seen_at": seen_at, "last_sequence": sequence}
                    for pk, (seen_at, sequence) in last_seen.items()
                    if pk not in guard.changed
                ]
                + [
                    {"id": mark["id"], "last_seen_at": last_seen[mark["id"]][0], **mark}
                    for mark in guard.marks()
                    if mark["id"] in last_seen
                ],
            )
        for pk, (_parsed, status) in statuses.items():
            health = "clock" if abs(status.clock_offset_ms) > self.settings.clock_warn_ms else "ok"
            session.execute(
                update(Sensor)
                .where(Sensor.id == pk)
                .values(
                    last_seen_at=now,
                    health=health,
                    last_status=status.model_dump(mode="json"),
                    last_status_at=status.sent_at,
                )
            )
        count_rejections(
            session,
            self.validator.registry,
            refused,
            now,
            self.settings.rejection_audit_interval_s,
        )
        if dead:
            session.execute(insert(DeadLetter), dead)
        self._stage(result, "write", mark)
        return result

    @staticmethod
    def _store_onsets(
        session: Session,
        envelopes: Sequence[Envelope],
        items: list[tuple[int, Parsed, ImpulseOnsetMessage]],
        result: BatchResult,
    ) -> list[tuple[str, datetime]]:
        """Insert the reported onsets that are new; returns their (site, time) for fusion.
        An answer with no onset (``count`` 0) is accepted and stores nothing."""
        if not items:
            return []
        ids = [message.message_id for _, _, message in items]
        known = set(
            session.execute(
                select(ImpulseOnsetRow.message_id).where(ImpulseOnsetRow.message_id.in_(ids))
            ).scalars()
        )
        rows: list[dict[str, Any]] = []
        reported: list[tuple[str, datetime]] = []
        for index, parsed, message in items:
            if message.message_id in known:
                result.outcomes[index] = "duplicate"
                result.duplicates += 1
                continue
            known.add(message.message_id)
            result.outcomes[index] = "accepted"
            result.accepted_onsets += 1
            if message.onset is None or message.level_dbfs is None:
                continue
            rows.append(
                {
                    "message_id": message.message_id,
                    "request_id": message.request_id,
                    "sensor_pk": parsed.sensor.pk,
                    "site": message.site,
                    "sensor_id": message.sensor_id,
                    "onset": message.onset,
                    "level_dbfs": message.level_dbfs,
                    "prominence_db": message.prominence_db or 0.0,
                    "received_at": envelopes[index].received_at,
                }
            )
            reported.append((message.site, message.onset))
        if rows:
            session.execute(insert(ImpulseOnsetRow), rows)
            session.flush()
        return reported

    @staticmethod
    def _stage(result: BatchResult, name: str, since: float) -> float:
        now = time.perf_counter()
        result.stages[name] = result.stages.get(name, 0.0) + now - since
        return now

    def process_isolating(self, envelopes: Sequence[Envelope]) -> BatchResult:
        """Process one envelope at a time; one that still fails is dead-lettered."""
        total = BatchResult(outcomes=[], changes=[])
        for envelope in envelopes:
            try:
                part = self.process([envelope])
            except (OperationalError, ConnectionError):
                raise
            except Exception as exc:
                log.exception("ingest: message from %r failed; dead-lettering it", envelope.topic)
                part = self._dead_letter_internal(envelope, exc)
            total.outcomes += part.outcomes
            total.changes += part.changes
            total.accepted_events += part.accepted_events
            total.accepted_status += part.accepted_status
            total.accepted_onsets += part.accepted_onsets
            total.onset_asks += part.onset_asks
            total.duplicates += part.duplicates
            total.fusion_s += part.fusion_s
            for reason, n in part.rejects.items():
                total.rejects[reason] = total.rejects.get(reason, 0) + n
        return total

    def _dead_letter_internal(self, envelope: Envelope, exc: Exception) -> BatchResult:
        with self.sessions() as session, session.begin():
            session.add(
                DeadLetter(
                    received_at=envelope.received_at,
                    source=envelope.source,
                    topic=envelope.topic[:256],
                    reason="internal_error",
                    detail=f"{type(exc).__name__}: {exc}"[:500],
                    payload=_printable(envelope.payload),
                )
            )
        return BatchResult(
            outcomes=["rejected:internal_error"], changes=[], rejects={"internal_error": 1}
        )


class IngestWorker:
    """Async front of ``BatchProcessor``: queue → batches → thread → acks and notifications."""

    def __init__(
        self,
        processor: BatchProcessor,
        metrics: HubMetrics,
        batch_size: int = 500,
        batch_wait_ms: float = 20.0,
        on_changes: Callable[[list[IncidentChange]], None] | None = None,
        on_onset_asks: Callable[[list[OnsetAsk]], None] | None = None,
        max_queue: int = 100_000,
    ) -> None:
        self.processor = processor
        self.metrics = metrics
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_ms / 1000.0
        self.on_changes = on_changes
        self.on_onset_asks = on_onset_asks
        self.queue: asyncio.Queue[Envelope] = asyncio.Queue(maxsize=max_queue)
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.stage_seconds: dict[str, float] = {}

    submitted = 0
    finished = 0

    async def submit(self, envelope: Envelope) -> None:
        self.submitted += 1
        await self.queue.put(envelope)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ouie-hub-ingest")

    async def stop(self, drain: bool = True) -> None:
        if drain:
            await self.drain()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until everything queued so far is committed."""
        deadline = time.monotonic() + timeout_s
        target = self.submitted
        while self.finished < target and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def _next_batch(self) -> list[Envelope]:
        batch = [await self.queue.get()]
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_size:
            try:
                batch.append(self.queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            try:
                result = await self._commit(batch)
                self._finish(batch, result)
            finally:
                self.finished += len(batch)

    async def _commit(self, batch: list[Envelope]) -> BatchResult:
        delay = 0.2
        isolate = False
        while True:
            start = time.perf_counter()
            try:
                if isolate:
                    result = await asyncio.to_thread(self.processor.process_isolating, batch)
                else:
                    result = await asyncio.to_thread(self.processor.process, batch)
                self.metrics.batch_seconds.observe(time.perf_counter() - start)
                return result
            except IntegrityError as exc:
                log.debug("ingest: integrity error: %s", exc)
                # another worker stored one of these message ids meanwhile: the retry sees it
                log.info("ingest: concurrent duplicate; retrying batch")
            except (OperationalError, ConnectionError) as exc:
                log.warning("ingest: database unavailable (%s); retrying in %.1f s", exc, delay)
                self.metrics.db_errors.inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            except Exception:
                if isolate:
                    log.exception("ingest: batch failed even one by one; retrying")
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                else:
                    log.exception("ingest: batch failed; isolating the message at fault")
                isolate = True

    def _finish(self, batch: list[Envelope], result: BatchResult) -> None:
        self.batches += 1
        for stage, seconds in result.stages.items():
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds
        m = self.metrics
        for envelope, outcome in zip(batch, result.outcomes, strict=True):
            if envelope.ack is not None:
                try:
                    envelope.ack()
                except Exception:
                    log.exception("ingest: acknowledging a message failed")
            if envelope.outcome is not None and not envelope.outcome.done():
                envelope.outcome.set_result(outcome)
            if envelope.confirm is not None:
                try:
                    envelope.confirm(outcome)
                except Exception:
                    log.exception("ingest: confirming a message to its sensor failed")
        if result.accepted_events:
            m.messages.labels(kind="event").inc(result.accepted_events)
        if result.accepted_status:
            m.messages.labels(kind="status").inc(result.accepted_status)
        if result.accepted_onsets:
            m.messages.labels(kind="impulse_onset").inc(result.accepted_onsets)
        if result.duplicates:
            m.duplicates.inc(result.duplicates)
        for reason, n in result.rejects.items():
            m.rejects.labels(reason=reason).inc(n)
        if result.accepted_events:
            m.fusion_seconds.observe(result.fusion_s)
        if result.changes and self.on_changes is not None:
            try:
                self.on_changes(result.changes)
            except Exception:
                log.exception("ingest: change listener failed")
        if result.onset_asks and self.on_onset_asks is not None:
            try:
                self.on_onset_asks(result.onset_asks)
            except Exception:
                log.exception("ingest: sending onset requests failed")
