"""The twin's sensors: real ``NodeRuntime``s fed by simulated microphones, in lockstep.

Every sensor is the same ``NodeRuntime`` that ``ouie node`` runs (pipeline, speech guard,
event messages with sample-clock times, heartbeats, the configured transport). Only three
things are simulated around it: its audio source (the rendered stream, handed out chunk by
chunk by the ``Lockstep`` driver), its clock (``clock_source="simulated"``: sample 0 is
the run origin plus the sensor's clock error) and, for speed, its classifier: the driver
scores the windows every sensor will need for a chunk in **one batch** across sensors and
each node's ``PrefetchedClassifier`` returns those rows when the pipeline asks for exactly
those windows (anything else is computed directly, so results never depend on batching).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ouie.core.messages import EventMessage, ImpulseOnsetMessage, StatusMessage
from ouie.node.classifiers.base import Classifier, ClassifierWrapper
from ouie.node.pipeline import DetectedEvent, DetectionPipeline
from ouie.node.runtime import NodeRuntime
from ouie.node.sources import AudioChunk, AudioSource
from ouie.sim.render import ContributionStore, SensorStream
from ouie.transport.base import OnsetPublisher, Publisher

FloatArray = npt.NDArray[np.float32]
MAX_BATCH = 512


class LockedClassifier(ClassifierWrapper):
    """One classifier shared by every simulated node: calls are serialised, since not every
    backend's runtime may be entered from several threads at once (TFLite may not)."""

    def __init__(self, inner: Classifier) -> None:
        super().__init__(inner)
        self._lock = threading.Lock()

    def scores(self, frames: FloatArray) -> FloatArray:
        with self._lock:
            return self.inner.scores(frames)


class PrefetchedClassifier(ClassifierWrapper):
    """One node's view of a shared classifier, answering from batched results when it can."""

    def __init__(self, inner: Classifier) -> None:
        super().__init__(inner)
        self._ready: deque[tuple[FloatArray, FloatArray]] = deque()
        self.hits = 0
        self.misses = 0

    def offer(self, windows: FloatArray, scores: FloatArray) -> None:
        self._ready.append((windows, scores))

    def scores(self, frames: FloatArray) -> FloatArray:
        while self._ready:
            windows, scores = self._ready[0]
            self._ready.popleft()
            if windows.shape == frames.shape and np.array_equal(windows, frames):
                self.hits += 1
                return scores
            self.misses += 1
        return self.inner.scores(frames)


class TimedPipeline(DetectionPipeline):
    """The node's pipeline, unchanged, with the CPU time of its thread counted and the wall
    time of its last push noted (a node's own processing delay)."""

    cpu_s: float = 0.0
    timing: SensorTiming | None = None

    def push(self, chunk: FloatArray) -> list[DetectedEvent]:
        start = time.thread_time()
        wall = time.perf_counter()
        try:
            return super().push(chunk)
        finally:
            self.cpu_s += time.thread_time() - start
            if self.timing is not None:
                self.timing.push_wall_s = time.perf_counter() - wall

    def flush(self) -> list[DetectedEvent]:
        start = time.thread_time()
        try:
            return super().flush()
        finally:
            self.cpu_s += time.thread_time() - start


class SimNodeRuntime(NodeRuntime):
    """``NodeRuntime`` with its pipeline timed (nothing else differs)."""

    timing: SensorTiming | None = None

    def _pipeline(self, classifier: Classifier, input_rate: int) -> DetectionPipeline:
        pipeline = TimedPipeline(
            classifier,
            self.settings.events,
            self.settings.privacy,
            input_rate=input_rate,
            ring_buffer_s=self.settings.ring_buffer_s,
            onsets=self.settings.onsets,
        )
        pipeline.timing = self.timing
        return pipeline

    @property
    def cpu_s(self) -> float:
        pipeline = self.pipeline
        return pipeline.cpu_s if isinstance(pipeline, TimedPipeline) else 0.0


@dataclass(frozen=True)
class Published:
    """When and how an event left a node (for end-to-end latency)."""

    sensor_index: int
    message: EventMessage
    stream_s: float  # audio the node had consumed when it published (scenario s)
    chunk_wall: float  # monotonic time the last chunk was handed to the node
    push_wall_s: float  # how long the node's pipeline took over that chunk
    publish_wall: float


@dataclass
class SensorTiming:
    delivered: int = 0
    chunk_wall: float = 0.0
    push_wall_s: float = 0.0


class TimingPublisher:
    """Wraps a node's real publisher and notes when each event was published."""

    def __init__(self, index: int, timing: SensorTiming, rate: int, log: list[Published]) -> None:
        self.index = index
        self.timing = timing
        self.rate = rate
        self.log = log
        self.inner: Publisher | None = None

    def _target(self) -> Publisher:
        if self.inner is None:
            raise RuntimeError("TimingPublisher used before its inner publisher was set")
        return self.inner

    async def publish_event(self, message: EventMessage) -> None:
        await self._target().publish_event(message)
        self.log.append(
            Published(
                self.index,
                message,
                self.timing.delivered / self.rate,
                self.timing.chunk_wall,
                self.timing.push_wall_s,
                time.monotonic(),
            )
        )

    async def publish_status(self, message: StatusMessage) -> None:
        await self._target().publish_status(message)

    async def publish_onset(self, message: ImpulseOnsetMessage) -> None:
        target = self._target()
        if isinstance(target, OnsetPublisher):
            await target.publish_onset(message)

    async def close(self) -> None:
        await self._target().close()

    @property
    def spooled_events(self) -> int:
        return self._target().spooled_events


@dataclass
class Lockstep:
    """Hands each sensor's stream to its node chunk by chunk.

    Fast mode: chunk ``i`` goes out once every node has finished chunk ``i − 1``, so the run
    is as fast as the machine allows and fully reproducible. Real time: chunk ``i`` goes out
    at ``start + (i + 1)·chunk`` whatever the nodes are doing, like a live microphone.
    """

    streams: list[SensorStream]
    rate: int
    chunk: int
    n_samples: int
    classifiers: list[PrefetchedClassifier] | None = None
    shared: Classifier | None = None
    store: ContributionStore | None = None
    timings: list[SensorTiming] = field(default_factory=list)
    batch_cpu_s: float = 0.0
    batch_calls: int = 0
    started_wall: float | None = None  # monotonic time of scenario second 0 (real time)

    def __post_init__(self) -> None:
        n = len(self.streams)
        self.timings = [SensorTiming() for _ in range(n)]
        self._slots: list[asyncio.Queue[FloatArray | None]] = [asyncio.Queue() for _ in range(n)]
        self._requested = [0] * n
        self._changed = asyncio.Event()
        self._history: list[FloatArray] = [np.zeros(0, dtype=np.float32) for _ in range(n)]
        self._next_window = 0
        self._total = 0

    @property
    def n_ticks(self) -> int:
        return -(-self.n_samples // self.chunk)

    def source(self, index: int) -> AudioSource:
        return AudioSource(self.rate, self._chunks(index))

    async def _chunks(self, index: int) -> AsyncIterator[AudioChunk]:
        tick = 0
        while True:
            self._requested[index] = tick
            self._changed.set()
            block = await self._slots[index].get()
            if block is None:
                return
            timing = self.timings[index]
            timing.delivered += block.size
            timing.chunk_wall = time.monotonic()
            yield AudioChunk(block)
            tick += 1

    async def wait_ready(self, tick: int) -> None:
        """Until every node has asked for chunk ``tick`` (i.e. finished the one before)."""
        while min(self._requested) < tick:
            self._changed.clear()
            if min(self._requested) >= tick:
                break
            await self._changed.wait()

    def release(self, tick: int) -> None:
        start = tick * self.chunk
        n = min(self.chunk, self.n_samples - start)
        if self.store is not None:
            self.store.release_before(start)
        blocks = [stream.block(start, n) for stream in self.streams]
        if self.classifiers is not None and self.shared is not None:
            self._prefetch(blocks)
        for slot, block in zip(self._slots, blocks, strict=True):
            slot.put_nowait(block)

    def finish(self) -> None:
        for slot in self._slots:
            slot.put_nowait(None)

    def _prefetch(self, blocks: list[FloatArray]) -> None:
        """Score, in one batch across sensors, the windows each pipeline completes now."""
        assert self.classifiers is not None and self.shared is not None
        window, hop = self.shared.window_samples, self.shared.hop_samples
        self._total += blocks[0].size
        keep = window + hop + self.chunk
        starts: list[int] = []
        while self._next_window + window <= self._total:
            starts.append(self._next_window)
            self._next_window += hop
        for k, block in enumerate(blocks):
            joined = np.concatenate([self._history[k], np.clip(block, -1.0, 1.0)])
            self._history[k] = joined[-keep:]
        if not starts:
            return
        base = self._total - self._history[0].size
        per_sensor = [
            np.stack([h[s - base : s - base + window] for s in starts]) for h in self._history
        ]
        stacked = np.concatenate(per_sensor)
        began = time.thread_time()
        rows = [
            self.shared.scores(stacked[i : i + MAX_BATCH])
            for i in range(0, stacked.shape[0], MAX_BATCH)
        ]
        self.batch_cpu_s += time.thread_time() - began
        self.batch_calls += 1
        scores = np.concatenate(rows)
        n = len(starts)
        for k, classifier in enumerate(self.classifiers):
            classifier.offer(per_sensor[k], scores[k * n : (k + 1) * n])

    async def run(
        self,
        realtime: bool,
        after_tick: Callable[[], Awaitable[None]] | None = None,
        before_end: Callable[[], Awaitable[None]] | None = None,
    ) -> float:
        """Play every chunk; returns the wall-clock seconds it took. ``before_end`` runs
        after the last chunk, while the nodes still listen (the streams end after it)."""
        started = time.monotonic()
        self.started_wall = started
        for tick in range(self.n_ticks):
            if realtime:  # a live microphone delivers a chunk once it has been captured
                due = started + (tick + 1) * self.chunk / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            else:
                await self.wait_ready(tick)
                if after_tick is not None:
                    await after_tick()
            self.release(tick)
        await self.wait_ready(self.n_ticks)
        if before_end is not None:
            await before_end()
        self.finish()
        return time.monotonic() - started
