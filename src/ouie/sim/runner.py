"""Play a scenario: rendered streams → real nodes → transport → the hub → the scorecard.

``play`` runs one built scenario against a hub the caller started (``HubClient``): one
``SimNodeRuntime`` per sensor, publishing over the in-process bus or MQTT exactly as
``ouie node`` does, driven chunk by chunk by ``Lockstep``. While it plays, the hub is read
back through its API to see when each incident first becomes visible; at the end the
incidents (with their detections) are scored against the ground truth.

Time: every sensor's sample clock starts at ``origin`` (UTC) plus its simulated clock error.
In real time ``origin`` is now. Faster than real time the whole scenario is placed in the
recent past (``origin = now − duration − margin``) so no onset is ever in the hub's future.

Latency (true onset at the nearest sensor → incident visible through the hub API): in real
time, wall clock — the moment the hub announces the incident minus the moment the onset
reached the nearest microphone. Faster than real time it is rebuilt from measured parts:
``stream time when the node published − true onset`` (the detector's algorithmic delay:
chunking, window confirmation) + the wall time of that node's pipeline over its chunk + the
wall time from publishing to the hub's announcement (transport, ingest, fusion). Time a
node spends waiting for the machine's other simulated nodes is left out, as separate
devices would not wait for each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field

from ouie.config.classifiers import DEFAULT_BACKEND, ClassifierSettings
from ouie.config.node import EventSettings, NodeSettings
from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now
from ouie.node.classifiers.base import Classifier
from ouie.sim.nodes import (
    LockedClassifier,
    Lockstep,
    PrefetchedClassifier,
    Published,
    SimNodeRuntime,
    TimingPublisher,
)
from ouie.sim.scenario import BuiltScenario, ScenarioSpec
from ouie.sim.scorecard import ObservedIncident, score
from ouie.sim.site import Site
from ouie.sim.sources import describe as describe_sources
from ouie.transport.factory import create_publisher
from ouie.transport.inproc import InProcBus

log = logging.getLogger(__name__)

PAST_MARGIN_S = 30.0
#: How long the end of a run waits for the hub's last onset requests and their answers.
QUIESCE_TIMEOUT_S = 10.0
#: ... and how long all must have been quiet for it to end.
QUIET_S = 0.1
#: Above this many sensors incidents are read from the hub's database, not its API.
API_READ_MAX_SENSORS = 64


class SimSettings(StrictModel):
    backend: str = Field(default=DEFAULT_BACKEND, description="classifier backend of every node")
    sample_rate: int | None = Field(default=None, description="render rate; None: the model's")
    chunk_s: float = Field(default=0.1, gt=0.0, le=2.0, description="capture chunk")
    realtime: bool = False
    broker: str | None = Field(default=None, description="mqtt://host:port; None: in-process")
    batch: bool = Field(default=True, description="batch classifier windows across sensors")
    status_interval_s: float = Field(default=5.0, gt=0.0)
    events: EventSettings | None = Field(default=None, description="node event settings")
    onsets: bool = Field(
        default=True,
        description="nodes answer the hub's onset requests (docs/hub.md, onsets on request)",
    )
    settle_timeout_s: float = Field(
        default=3.0, gt=0.0, description="how long to wait for a published event to show up"
    )
    poll_interval_s: float = Field(default=0.01, gt=0.0)


class HubClient(Protocol):
    """The hub as the twin sees it: where nodes send, and an API to read incidents back."""

    @property
    def bus(self) -> InProcBus | None:
        """The in-process bus the hub ingests from (None when it ingests from MQTT)."""
        ...

    async def register_site(self, site: Site) -> None:
        """Make the hub know the site's sensors (positions, calibration)."""
        ...

    async def settle(self) -> None:
        """Wait until what was sent so far has been processed, where the hub can tell."""
        ...

    @property
    def busy(self) -> bool:
        """Whether the hub still has work on its way to the nodes (onset requests)."""
        ...

    async def detection_ids(self, site: str, since: datetime) -> set[str]:
        """Message ids of the detections of ``site`` with onsets at or after ``since``."""
        ...

    async def incidents(self, site: str, since: datetime) -> list[ObservedIncident]:
        """Incidents holding detections of ``site`` with onsets at or after ``since``."""
        ...

    def first_seen(self, incident_id: str) -> float | None:
        """``time.monotonic()`` when the incident first became visible, if it has."""
        ...


@dataclass
class Visibility:
    """Which published events the hub shows, and when incidents became visible."""

    published: dict[str, Published] = field(default_factory=dict)  # message id → record
    seen_messages: set[str] = field(default_factory=set)
    given_up: set[str] = field(default_factory=set)

    def pending(self) -> set[str]:
        return set(self.published) - self.seen_messages - self.given_up

    def visible_s(
        self, incident: ObservedIncident, seen: float | None, realtime_start: float | None
    ) -> float | None:
        """Scenario time the incident became visible (see the module docstring)."""
        if seen is None:
            return None
        if realtime_start is not None:
            return seen - realtime_start
        records = [
            self.published[d.message_id]
            for d in incident.detections
            if d.message_id in self.published
        ]
        if not records:
            return None
        first = min(records, key=lambda r: r.publish_wall)
        return first.stream_s + first.push_wall_s + max(0.0, seen - first.publish_wall)


def _node_settings(
    site: Site, index: int, settings: SimSettings, spool_dir: Path, run_id: str
) -> NodeSettings:
    sensor = site.sensors[index]
    publish: dict[str, Any] = {
        "kind": "mqtt" if settings.broker else "inproc",
        "status_interval_s": settings.status_interval_s,
        "spool": {"path": str(spool_dir / f"{sensor.id}.sqlite3")},
    }
    if settings.broker:
        publish["mqtt"] = {"url": settings.broker, "client_id": f"ouie-sim-{run_id}-{sensor.id}"}
    data: dict[str, Any] = {
        "site": site.site_id,
        "sensor_id": sensor.id,
        "calibration_db_spl": sensor.calibration_db_spl,
        # no classifier section: every node runs the one shared classifier it is handed
        # (``create_sim_classifier``, or a test's), never one made from its settings
        "publish": publish,
    }
    if settings.events is not None:
        data["events"] = settings.events.model_dump()
    if not settings.onsets:
        data["onsets"] = {"answer_requests": False}
    return NodeSettings.model_validate(data)


def default_origin(duration_s: float, realtime: bool) -> datetime:
    now = utc_now()
    return now if realtime else now - timedelta(seconds=duration_s + PAST_MARGIN_S)


async def play(
    built: BuiltScenario,
    hub: HubClient,
    classifier: Classifier,
    settings: SimSettings,
    origin: datetime | None = None,
) -> dict[str, Any]:
    """Play ``built`` through real nodes into ``hub``; returns the scorecard."""
    # Batching needs the pipeline to see the rendered samples as they are (no resampling).
    batch = settings.batch and classifier.sample_rate == built.sample_rate
    site = built.site
    origin = origin or default_origin(built.spec.duration_s, settings.realtime)
    n = len(site.sensors)
    log_: list[Published] = []
    visibility = Visibility()
    shared = LockedClassifier(classifier)
    views = [PrefetchedClassifier(shared) for _ in range(n)]
    lockstep = Lockstep(
        built.streams,
        built.sample_rate,
        max(1, round(settings.chunk_s * built.sample_rate)),
        built.n_samples,
        classifiers=views if batch else None,
        shared=shared if batch else None,
        store=built.store,
    )
    runtimes: list[SimNodeRuntime] = []
    publishers: list[TimingPublisher] = []
    run_id = uuid.uuid4().hex[:8]
    await hub.register_site(site)
    with tempfile.TemporaryDirectory(prefix="ouie-sim-") as spool:
        for k in range(n):
            node_settings = _node_settings(site, k, settings, Path(spool), run_id)
            timing_pub = TimingPublisher(k, lockstep.timings[k], built.sample_rate, log_)
            runtime = SimNodeRuntime(
                node_settings,
                classifier=views[k],
                publisher=timing_pub,
                source=lockstep.source(k),
                bus=hub.bus,
                clock_origin=origin + timedelta(seconds=built.clock_offsets_s[k]),
                clock_source="simulated",
                handle_signals=False,
            )
            runtime.timing = lockstep.timings[k]
            timing_pub.inner = await create_publisher(
                node_settings, runtime.apply_config, hub.bus, runtime.onset_handler
            )
            runtimes.append(runtime)
            publishers.append(timing_pub)

        since = origin - timedelta(seconds=5)

        async def settle() -> None:
            """Wait until every published event shows up through the hub (or give up)."""
            for record in log_[len(visibility.published) :]:
                visibility.published[record.message.message_id] = record
            if not visibility.pending():
                return
            deadline = time.monotonic() + settings.settle_timeout_s
            await hub.settle()
            while True:
                visibility.seen_messages |= await hub.detection_ids(site.site_id, since)
                if not visibility.pending():
                    return
                if time.monotonic() > deadline:
                    missing = visibility.pending()
                    visibility.given_up |= missing
                    log.warning("%d published events never showed up in the hub", len(missing))
                    return
                await asyncio.sleep(settings.poll_interval_s)

        async def watch() -> None:  # real time: check in the background
            while True:
                await asyncio.sleep(0.25)
                await settle()

        async def quiesce() -> None:
            """Before the streams end: the onset requests the hub is still to send, and the
            nodes' answers to them (a node that stopped answers nothing)."""
            deadline = time.monotonic() + QUIESCE_TIMEOUT_S
            quiet_since: float | None = None
            while time.monotonic() < deadline:
                await settle()
                if hub.busy or any(r.answering for r in runtimes):
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= QUIET_S:  # a broker's transit, too
                    return
                await asyncio.sleep(settings.poll_interval_s)

        wall_start = time.monotonic()
        async with asyncio.TaskGroup() as tasks:
            node_tasks = [tasks.create_task(r.run()) for r in runtimes]
            watcher = tasks.create_task(watch()) if settings.realtime else None
            await lockstep.run(
                settings.realtime, None if settings.realtime else settle, before_end=quiesce
            )
            await asyncio.gather(*node_tasks)
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        for publisher in publishers:
            await publisher.close()
        await hub.settle()  # the sensors' last onset answers, too
        await settle()
        wall_s = time.monotonic() - wall_start
    incidents = await hub.incidents(site.site_id, since)
    for incident in incidents:
        incident.visible_s = visibility.visible_s(
            incident,
            hub.first_seen(incident.id),
            lockstep.started_wall if settings.realtime else None,
        )
    offsets = {s.id: built.clock_offsets_s[k] for k, s in enumerate(site.sensors)}
    card = score(
        built.truth,
        incidents,
        origin,
        offsets,
        sensors=n,
        duration_s=built.spec.duration_s,
    )
    audio_s = built.n_samples / built.sample_rate
    cpu = [r.cpu_s + lockstep.batch_cpu_s / n for r in runtimes]
    card.update(
        {
            "scenario": built.spec.name,
            "site": site.site_id,
            "backend": settings.backend,
            "model_id": classifier.model_id,
            "transport": "mqtt" if settings.broker else "inproc",
            "realtime": settings.realtime,
            "onsets": settings.onsets,
            "wall_s": round(wall_s, 2),
            "speed": round(audio_s / wall_s, 2) if wall_s > 0 else None,
            "node_cpu": {
                "percent_of_core_mean": round(100.0 * sum(cpu) / n / audio_s, 3),
                "percent_of_core_max": round(100.0 * max(cpu) / audio_s, 3),
                "total_cpu_s": round(sum(cpu), 3),
                "batched": batch,
                "prefetch_hits": sum(v.hits for v in views),
                "prefetch_misses": sum(v.misses for v in views),
            },
            "events_published": len(log_),
            "events_not_visible": len(visibility.given_up),
            "ambience": built.ambience_tracks,
            "dataset": str(built.dataset_dir) if built.dataset_dir else None,
            "sources": describe_sources(built),
            "clip_folds": built.clip_folds,
            "origin": origin.isoformat(),
        }
    )
    return card


@dataclass(frozen=True)
class RunRequest:
    """Everything ``ouie sim run`` needs to run one scenario from scratch."""

    scenario: str | Path
    settings: SimSettings
    site: str | Path | None = None
    sensors: int | None = None
    dataset_dir: Path | None = None
    clip_folds: list[int] | None = None
    seed: int | None = None
    duration_s: float | None = None
    model_dir: Path | None = None
    database_url: str | None = None


def create_sim_classifier(settings: SimSettings, model_dir: Path | None = None) -> Classifier:
    from ouie.node.classifiers.registry import create_classifier

    return create_classifier(ClassifierSettings(backend=settings.backend, model_dir=model_dir))


def prepare(
    request: RunRequest, classifier: Classifier, spec: ScenarioSpec | None = None
) -> BuiltScenario:
    """Load (unless ``spec`` is given), replant (grid) and render ``request``'s scenario."""
    from ouie.sim.grid import grid_site, replant
    from ouie.sim.scenario import build, load_scenario
    from ouie.sim.site import resolve_site

    spec = spec or load_scenario(request.scenario)
    if request.seed is not None:
        spec = spec.model_copy(update={"seed": request.seed})
    if request.duration_s is not None and request.duration_s < spec.duration_s:
        spec = spec.model_copy(update={"duration_s": request.duration_s})
    site = resolve_site(request.site or spec.site)
    if request.sensors is not None:
        grid = grid_site(request.sensors)
        spec = replant(spec, site, grid)
        site = grid
    rate = request.settings.sample_rate or classifier.sample_rate
    return build(spec, site, rate, request.dataset_dir, request.clip_folds)


async def run_request(request: RunRequest) -> dict[str, Any]:
    """Render, start a hub, play, stop: the scorecard of one scenario."""
    from ouie.sim.hubclient import LocalHub
    from ouie.sim.scenario import load_scenario

    # The scenario first: a misspelt name is reported as such, before the backend's model
    # files are looked for (which may be missing on a fresh clone).
    spec = load_scenario(request.scenario)
    classifier = await asyncio.to_thread(create_sim_classifier, request.settings, request.model_dir)
    built = await asyncio.to_thread(prepare, request, classifier, spec)
    hub = LocalHub(
        database_url=request.database_url,
        broker=request.settings.broker,
        temperature_c=built.spec.atmosphere.temperature_c,
        via_api=len(built.site.sensors) <= API_READ_MAX_SENSORS,
    )
    await hub.start()
    try:
        card = await play(built, hub, classifier, request.settings)
    finally:
        await hub.stop()
    return card
