"""``ouie node``: the composition root of a sensor.

    source ─chunks─▶ DetectionPipeline (worker thread) ─DetectedEvent─▶ EventMessage ─▶ Publisher
                                                     heartbeat every status_interval_s ─▶ Publisher
    Publisher ─ThresholdConfigMessage─▶ thresholds of the running pipeline
    Publisher ─OnsetRequestMessage─▶ impulse onsets of the window ─ImpulseOnsetMessage─▶ Publisher

Two tasks run in one ``asyncio.TaskGroup``: the processing loop and the heartbeat. The
pipeline (front-end, classifier, speech guard) runs in one dedicated worker thread, so the
event loop (MQTT keepalive, spool draining, config messages) never waits for inference, and
the models are always called from the same thread. SIGINT/SIGTERM stop
the loop gracefully: the pipeline is flushed, the last events and a final heartbeat are
published, the publisher delivers what it can and closes. A second signal cancels at once.

Audio exists only in the source's chunks and the pipeline's bounded ring buffer; nothing
here writes audio, features or scores anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from ouie.config.node import EventSettings, NodeSettings
from ouie.core.messages import (
    MAX_ONSET_WINDOW_S,
    MAX_ONSETS_PER_ANSWER,
    EventMessage,
    ImpulseOnsetMessage,
    OnsetRequestMessage,
    ThresholdConfigMessage,
)
from ouie.core.timebase import SampleClock, utc_now
from ouie.node.classifiers.base import Classifier
from ouie.node.pipeline import DetectedEvent, DetectionPipeline, PipelineStats
from ouie.node.sources import AudioChunk, AudioSource
from ouie.node.status import ClockSource, StatusBuilder
from ouie.transport.base import (
    OnsetPublisher,
    OnsetRequestHandler,
    Publisher,
    ResumesSequence,
)
from ouie.transport.inproc import InProcBus
from ouie.transport.signing import SigningKey, VerifyKey

log = logging.getLogger(__name__)

LEVEL_MIN_DBFS = -200.0
#: How long a stopping node still gives its open onset answers to finish.
ANSWER_GRACE_S = 2.0
T = TypeVar("T")


@dataclass
class RunSummary:
    events_published: int = 0
    status_published: int = 0
    stopped_by_signal: bool = False
    stats: PipelineStats = field(default_factory=PipelineStats)


def event_message(
    event: DetectedEvent,
    clock: SampleClock,
    *,
    site: str,
    sensor_id: str,
    model_id: str,
    sequence: int,
    calibration_db_spl: float | None,
) -> EventMessage:
    """A pipeline event as a wire message: absolute UTC times from the sample clock."""
    level = min(0.0, max(LEVEL_MIN_DBFS, event.level_dbfs))
    rate = clock.sample_rate
    return EventMessage(
        site=site,
        sensor_id=sensor_id,
        label=event.label,
        onset=clock.time_of(event.onset_s * rate),
        offset=clock.time_of(max(event.offset_s, event.onset_s) * rate),
        peak_score=min(1.0, max(0.0, event.peak_score)),
        level_dbfs=level,
        level_db_spl=None if calibration_db_spl is None else round(level + calibration_db_spl, 2),
        model_id=model_id,
        speech_present=event.speech_present,
        sequence=sequence,
    )


class NodeRuntime:
    """One sensor process. Dependencies may be injected (tests, the twin, ``ouie demo``)."""

    def __init__(
        self,
        settings: NodeSettings,
        *,
        classifier: Classifier | None = None,
        publisher: Publisher | None = None,
        source: AudioSource | None = None,
        bus: InProcBus | None = None,
        clock_origin: datetime | None = None,
        clock_source: ClockSource | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.settings = settings
        self._classifier = classifier
        self._publisher = publisher
        self._owns_publisher = publisher is None
        self._source = source
        self.bus = bus
        self.clock_origin = clock_origin
        self.clock_source = clock_source
        self.handle_signals = handle_signals
        self.events_settings: EventSettings = settings.events
        self._pending_events: EventSettings | None = None
        # issue 18: this sensor signs what it sends; configs must carry the hub's signature
        identity = settings.identity
        self._signer = SigningKey.load(identity.signing_key) if identity.signing_key else None
        self._hub_key = VerifyKey.load(identity.hub_public_key) if identity.hub_public_key else None
        self.rejected_configs = 0
        self._config_issued_at: datetime | None = None
        self._stop = asyncio.Event()
        self._done = asyncio.Event()
        self._signals = 0
        self._sequence = 0
        self.clock: SampleClock | None = None
        self.pipeline: DetectionPipeline | None = None
        # the hub's onset requests (``on_onset_request``): answers in flight, counts, rate
        self._live_publisher: Publisher | None = None
        self._answers: set[asyncio.Task[None]] = set()
        self._request_times: deque[float] = deque()
        self.onset_requests_answered = 0
        self.onset_requests_refused = 0
        self.summary = RunSummary()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ouie-pipeline")

    # -- control --------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop after the current chunk: flush, publish the rest, close."""
        self._stop.set()

    def apply_config(self, message: ThresholdConfigMessage) -> None:
        """Thresholds pushed by the hub; they take effect from the next chunk.

        The config's thresholds override the node file's label by label; a label the
        config leaves out falls back to the node file (not to an earlier config).
        With ``identity.hub_public_key`` a config the hub did not sign is refused, and so is
        one issued before the config in force; refusals are counted in the heartbeat
        (``rejected_configs``), so the hub hears of a forged config.
        """
        if not self._config_acceptable(message):
            self.rejected_configs += 1
            return
        base = self.settings.events
        thresholds = {**base.thresholds, **message.thresholds}
        updated = base.model_copy(update={"thresholds": thresholds})
        self._pending_events = updated
        log.info(
            "threshold config from %s applied: %s",
            message.issued_at.isoformat(),
            ", ".join(f"{label}={value:g}" for label, value in sorted(thresholds.items())),
        )

    def _config_acceptable(self, message: ThresholdConfigMessage) -> bool:
        if self._hub_key is not None and not (
            message.signature is not None and self._hub_key.verify_message(message)
        ):
            log.warning(
                "threshold config of %s refused: not signed by the hub's key",
                message.issued_at.isoformat(),
            )
            return False
        if self._config_issued_at is not None and message.issued_at < self._config_issued_at:
            log.warning(
                "threshold config of %s refused: older than the one in force (%s)",
                message.issued_at.isoformat(),
                self._config_issued_at.isoformat(),
            )
            return False
        self._config_issued_at = message.issued_at
        return True

    @property
    def answering(self) -> bool:
        """Whether an answer to an onset request is being prepared or sent."""
        return bool(self._answers)

    @property
    def onset_handler(self) -> OnsetRequestHandler | None:
        """What the transport hands onset requests to: none while ``onsets.answer_requests``
        is off (the node then does not even subscribe to them)."""
        return self.on_onset_request if self.settings.onsets.answer_requests else None

    def on_onset_request(self, request: OnsetRequestMessage) -> None:
        """The hub asks for the impulse onsets this sensor heard in a short window (docs/hub.md,
        "Onsets on request"). Refused, and counted in the heartbeat, when onsets are off, the
        hub's signature is missing or wrong (with ``identity.hub_public_key``), the window is
        empty or longer than ``MAX_ONSET_WINDOW_S``, or requests come faster than
        ``onsets.max_requests_per_minute``. Called on the event loop by the transport."""
        reason = self._onset_refusal(request)
        if reason is not None:
            self.onset_requests_refused += 1
            log.warning("onset request %s refused: %s", request.request_id, reason)
            return
        task = asyncio.get_running_loop().create_task(self._answer_onsets(request))
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    def _onset_refusal(self, request: OnsetRequestMessage) -> str | None:
        settings = self.settings.onsets
        if not settings.answer_requests:
            return "onsets.answer_requests is off"
        if self._hub_key is not None and not (
            request.signature is not None and self._hub_key.verify_message(request)
        ):
            return "not signed by the hub's key"
        window = (request.end - request.start).total_seconds()
        if not 0.0 < window <= MAX_ONSET_WINDOW_S:
            return f"window of {window:.3f} s (at most {MAX_ONSET_WINDOW_S:g} s)"
        now = time.monotonic()
        while self._request_times and now - self._request_times[0] > 60.0:
            self._request_times.popleft()
        if len(self._request_times) >= settings.max_requests_per_minute:
            return f"more than {settings.max_requests_per_minute} requests in a minute"
        self._request_times.append(now)
        return None

    async def _answer_onsets(self, request: OnsetRequestMessage) -> None:
        pipeline, clock, publisher = self.pipeline, self.clock, self._live_publisher
        impulses = pipeline.impulses if pipeline is not None else None
        if impulses is None or clock is None or not isinstance(publisher, OnsetPublisher):
            self.onset_requests_refused += 1
            why = "no audio heard yet" if clock is None else "this transport cannot answer"
            log.warning("onset request %s refused: %s", request.request_id, why)
            return
        start_s = (request.start - clock.origin).total_seconds() - clock.offset_s
        end_s = (request.end - clock.origin).total_seconds() - clock.offset_s
        # the window may reach past the audio processed so far (a far sensor's arrival)
        deadline = time.monotonic() + self.settings.onsets.wait_s
        while impulses.stream_s < end_s and not self._done.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        onsets = await self._in_worker(impulses.between, start_s, end_s, MAX_ONSETS_PER_ANSWER)
        base = {
            "request_id": request.request_id,
            "site": self.settings.site,
            "sensor_id": self.settings.sensor_id,
            "count": len(onsets),
        }
        messages = [
            ImpulseOnsetMessage(
                **base,
                sent_at=utc_now(),
                index=index,
                onset=clock.time_of(onset.onset_s * clock.sample_rate),
                level_dbfs=onset.level_dbfs,
                prominence_db=onset.prominence_db,
            )
            for index, onset in enumerate(onsets)
        ] or [ImpulseOnsetMessage(**base, sent_at=utc_now(), index=0)]
        for message in messages:
            if self._signer is not None:
                message = self._signer.sign_message(message)
            await publisher.publish_onset(message)
        self.onset_requests_answered += 1
        log.info(
            "onset request %s answered: %d onsets in %s … %s",
            request.request_id,
            len(onsets),
            request.start.isoformat(timespec="milliseconds"),
            request.end.isoformat(timespec="milliseconds"),
        )

    # -- running --------------------------------------------------------------------------

    async def _in_worker(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, function, *args)

    async def run(self) -> RunSummary:
        """Run until the source ends or ``request_stop``/a signal; returns the totals."""
        try:
            return await self._run()
        finally:
            self._worker.shutdown(wait=False)

    async def _run(self) -> RunSummary:
        classifier = self._classifier
        if classifier is None:
            from ouie.node.classifiers.registry import create_classifier

            classifier = await self._in_worker(create_classifier, self.settings.classifier)
        source = self._source if self._source is not None else self._open_source()
        pipeline = await self._in_worker(self._pipeline, classifier, source.sample_rate)
        self.pipeline = pipeline
        self.summary.stats = pipeline.stats
        clock_source = self.clock_source
        if clock_source is None and self._source is None and self.settings.source.kind == "file":
            # Times of a replayed file are derived from "now", not from when it was recorded.
            clock_source = "simulated"
            if not self.settings.source.realtime and self.settings.publish.kind != "jsonl":
                log.warning(
                    "file source without source.realtime: event times run ahead of the wall "
                    "clock, and a hub rejects events from the future"
                )
        status = StatusBuilder(
            self.settings.site, self.settings.sensor_id, classifier.model_id, clock_source
        )
        publisher = self._publisher
        if publisher is None:
            from ouie.transport.factory import create_publisher

            publisher = await create_publisher(
                self.settings, self.apply_config, self.bus, self.onset_handler
            )
        self._live_publisher = publisher
        if isinstance(publisher, ResumesSequence):
            self._sequence = publisher.next_sequence()
        log.info(
            "node %s/%s running: model %s, publishing via %s",
            self.settings.site,
            self.settings.sensor_id,
            classifier.model_id,
            self.settings.publish.kind if self._owns_publisher else type(publisher).__name__,
        )
        restore = self._install_signal_handlers()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(
                    self._process(source, pipeline, publisher, classifier.model_id, status)
                )
                tasks.create_task(self._heartbeat(publisher, pipeline, status))
        except BaseExceptionGroup as group:
            # One failure is the usual case; re-raise it bare so callers can report it.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            restore()
            if self._answers:  # answers asked for before the end go out before the close
                await asyncio.wait(set(self._answers), timeout=ANSWER_GRACE_S)
            if self._owns_publisher:
                await publisher.close()
        self.summary.stopped_by_signal = self._signals > 0
        return self.summary

    def _pipeline(self, classifier: Classifier, input_rate: int) -> DetectionPipeline:
        return DetectionPipeline(
            classifier,
            self.settings.events,
            self.settings.privacy,
            input_rate=input_rate,
            ring_buffer_s=self.settings.ring_buffer_s,
            onsets=self.settings.onsets,
        )

    def _open_source(self) -> AudioSource:
        from ouie.node.sources import open_source

        return open_source(self.settings.source)

    async def _process(
        self,
        source: AudioSource,
        pipeline: DetectionPipeline,
        publisher: Publisher,
        model_id: str,
        status: StatusBuilder,
    ) -> None:
        stop_wait = asyncio.create_task(self._stop.wait())
        chunks = aiter(source)
        try:
            while True:
                next_chunk: asyncio.Future[AudioChunk] = asyncio.ensure_future(anext(chunks))
                await asyncio.wait((next_chunk, stop_wait), return_when=asyncio.FIRST_COMPLETED)
                if not next_chunk.done():
                    next_chunk.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await next_chunk
                    break
                try:
                    chunk = next_chunk.result()
                except StopAsyncIteration:
                    break
                if self.clock is None:
                    self.clock = self._start_clock(source.sample_rate, chunk.samples.size)
                self._take_pending_config(pipeline)
                events = await self._in_worker(_push, pipeline, chunk)
                status.levels.observe(pipeline.stats)
                await self._publish_events(events, publisher, model_id)
            events = await self._in_worker(pipeline.flush)
            if self.clock is None:  # the source ended before its first chunk
                self.clock = self._start_clock(source.sample_rate, 0)
            status.levels.observe(pipeline.stats)
            await self._publish_events(events, publisher, model_id)
        finally:
            stop_wait.cancel()
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
            self._done.set()

    def _start_clock(self, rate: int, first_chunk_samples: int) -> SampleClock:
        if self.clock_origin is not None:
            origin = self.clock_origin
        else:
            # The first chunk's samples were captured during the chunk before it arrived.
            origin = utc_now() - timedelta(seconds=first_chunk_samples / rate)
        return SampleClock(rate, origin)

    def _take_pending_config(self, pipeline: DetectionPipeline) -> None:
        # Applied between pushes, on the loop thread: never while a push runs in the worker.
        if self._pending_events is not None:
            pipeline.update_events(self._pending_events)
            self.events_settings = self._pending_events
            self._pending_events = None

    async def _publish_events(
        self, events: list[DetectedEvent], publisher: Publisher, model_id: str
    ) -> None:
        for event in events:
            assert self.clock is not None  # started with the first chunk
            message = event_message(
                event,
                self.clock,
                site=self.settings.site,
                sensor_id=self.settings.sensor_id,
                model_id=model_id,
                sequence=self._sequence,
                calibration_db_spl=self.settings.calibration_db_spl,
            )
            if self._signer is not None:
                message = self._signer.sign_message(message)
            self._sequence += 1
            await publisher.publish_event(message)
            self.summary.events_published += 1
            log.info(
                "event %s at %s (score %.2f, %.1f dBFS)",
                message.label,
                message.onset.isoformat(timespec="milliseconds"),
                message.peak_score,
                message.level_dbfs,
            )

    async def _heartbeat(
        self, publisher: Publisher, pipeline: DetectionPipeline, status: StatusBuilder
    ) -> None:
        interval = self.settings.publish.status_interval_s
        await self._send_status(publisher, pipeline, status)
        while not self._done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), interval)
            await self._send_status(publisher, pipeline, status)

    async def _send_status(
        self, publisher: Publisher, pipeline: DetectionPipeline, status: StatusBuilder
    ) -> None:
        message = status.build(
            pipeline.stats,
            publisher.spooled_events,
            rejected_configs=self.rejected_configs,
            onset_requests=(self.onset_requests_answered, self.onset_requests_refused),
        )
        if self._signer is not None:
            message = self._signer.sign_message(message)
        await publisher.publish_status(message)
        self.summary.status_published += 1

    def _install_signal_handlers(self) -> Callable[[], None]:
        if not self.handle_signals:
            return _noop
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        installed: list[signal.Signals] = []

        def on_signal(signum: signal.Signals) -> None:
            self._signals += 1
            if self._signals == 1:
                log.info("%s: stopping (send it again to stop at once)", signum.name)
                self.request_stop()
            elif task is not None:
                log.warning("%s again: cancelling", signum.name)
                task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread, or not supported here: no handler
            installed.append(signum)

        def restore() -> None:
            for signum in installed:
                loop.remove_signal_handler(signum)

        return restore


def _push(pipeline: DetectionPipeline, chunk: AudioChunk) -> list[DetectedEvent]:
    """One capture chunk into the pipeline (worker thread); a capture gap first."""
    if chunk.dropped_before > 0:
        pipeline.mark_dropped(chunk.dropped_before)
    return pipeline.push(chunk.samples)


def _noop() -> None:
    return None
