"""``ouie demo``: the hub, the console and the twin's street playing scenario after scenario.

Interactive: a real hub (SQLite, in-process bus, or Mosquitto with ``--broker``) with its
operator console served on ``http://HOST:PORT/console`` (a demo operator login is printed),
and the bundled scenarios playing in real time, in a loop, with new incidents shown live in
the terminal. ``--headless`` plays ``--duration`` seconds of street time (default: each
bundled scenario once), faster than real time unless ``--realtime``, then prints and
writes the combined scorecard. Faster than real time, scenarios are laid end to end in the
recent past so their incidents never mix.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ouie.config.classifiers import DEFAULT_BACKEND
from ouie.config.site import BUNDLED_SITE
from ouie.core.timebase import utc_now
from ouie.sim.hubclient import LocalHub
from ouie.sim.runner import RunRequest, SimSettings, create_sim_classifier, play, prepare
from ouie.sim.scenario import load_scenario
from ouie.sim.scorecard import aggregate
from ouie.sim.sources import sources_line

log = logging.getLogger(__name__)

#: The loop, most telling first; quiet-night last (it should stay empty).
DEMO_ORDER = ("shooting", "break-in", "crash", "graffiti", "saturday-night", "quiet-night")
GAP_S = 15.0  # street time between two scenarios
DEMO_USER = "demo"


@dataclass
class DemoOptions:
    headless: bool = False
    duration_s: float | None = None
    json_out: Path | None = None
    realtime: bool | None = None  # None: real time when interactive, fast when headless
    broker: str | None = None
    backend: str = DEFAULT_BACKEND
    model_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    console: bool = True
    dataset_dir: Path | None = None
    clip_folds: list[int] | None = None
    scenarios: tuple[str, ...] = DEMO_ORDER
    onsets: bool = True  # the nodes answer the hub's onset requests

    @property
    def is_realtime(self) -> bool:
        return (not self.headless) if self.realtime is None else self.realtime


@dataclass
class Plan:
    """Which scenarios play, for how long each (the last one may be cut short)."""

    items: list[tuple[str, float]] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return sum(d for _, d in self.items) + GAP_S * max(0, len(self.items) - 1)


def plan(scenarios: tuple[str, ...], duration_s: float | None) -> Plan:
    """Scenarios in order, looping, until ``duration_s`` of street time (None: each once)."""
    result = Plan()
    if duration_s is None:
        result.items = [(name, load_scenario(name).duration_s) for name in scenarios]
        return result
    remaining = duration_s
    for name in itertools.cycle(scenarios):
        if remaining <= 1.0:
            break
        length = min(load_scenario(name).duration_s, remaining)
        result.items.append((name, length))
        remaining -= length + GAP_S
    return result


class LiveView:
    """The terminal's view: the scenario playing and the incidents the hub reports."""

    def __init__(self) -> None:
        self.scenario = "starting"
        self.started = time.monotonic()
        self.incidents: dict[str, dict[str, Any]] = {}
        self.scenario_of: dict[str, str] = {}
        self.footer = ""

    def on_live(self, message: dict[str, Any]) -> None:
        incident = message.get("incident")
        if isinstance(incident, dict) and isinstance(incident.get("id"), str):
            self.scenario_of.setdefault(incident["id"], self.scenario)
            self.incidents[incident["id"]] = incident

    def render(self) -> Group:
        table = Table(title="incidents (newest first)", expand=True)
        for column in (
            "first onset (UTC)",
            "scenario",
            "class",
            "state",
            "where",
            "method",
            "rounds",
            "sensors",
        ):
            table.add_column(column)
        rows = sorted(self.incidents.values(), key=lambda i: i["first_onset"], reverse=True)
        for incident in rows[:15]:
            where = f"{incident['lat']:.5f},{incident['lon']:.5f} ±{incident['radius_m']:.0f}m"
            table.add_row(
                incident["first_onset"][11:19],
                self.scenario_of.get(incident["id"], ""),
                Text(incident["label"], style="bold red"),
                incident["state"],
                where,
                incident["method"],
                f"{incident.get('located_rounds', 0)}/{incident.get('rounds', 0)}",
                str(incident["sensor_count"]),
            )
        elapsed = time.monotonic() - self.started
        header = Text.assemble(
            ("ouie demo", "bold"), f" — playing {self.scenario}  ({elapsed:.0f} s)"
        )
        return Group(header, table, Text(self.footer, style="dim"))


async def _serve_console(
    hub: LocalHub, options: DemoOptions, out: Console
) -> tuple[Any, asyncio.Task[None]]:
    """The hub's API and operator console on HOST:PORT; prints the URL and a demo login."""
    import uvicorn

    from ouie.hub import auth
    from ouie.hub.api import create_app

    app = create_app(hub.hub, manage_hub=False)
    mounted = False
    try:
        from ouie.web import mount_web

        mounted = mount_web(app, hub.hub)
    except ImportError:
        mounted = False
    password = secrets.token_urlsafe(9)
    with hub.hub.sessions() as session, session.begin():
        auth.create_user(session, DEMO_USER, password, "supervisor", utc_now())
    config = uvicorn.Config(app, host=options.host, port=options.port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="ouie-demo-http")
    while not server.started:
        if task.done():  # e.g. the port is taken
            task.result()
            raise OSError(f"the console could not start on {options.host}:{options.port}")
        await asyncio.sleep(0.05)
    port = options.port
    with contextlib.suppress(AttributeError, IndexError):
        port = int(server.servers[0].sockets[0].getsockname()[1])  # --port 0: chosen by the OS
    base = f"http://{options.host}:{port}"
    where = f"{base}/console" if mounted else f"{base}/docs (API; console not installed)"
    out.print(
        f"[bold]console:[/bold] {where}   login [bold]{DEMO_USER}[/bold] / [bold]{password}[/bold]"
    )
    return server, task


async def _start_verification(hub: LocalHub, out: Console) -> Any:
    """Loopback ONVIF cameras and a MAVLink vehicle at the site's dock, so an operator can
    cue a camera and a supervisor can approve a drone flight from the console."""
    try:
        from ouie.sim.verify_demo import start_demo_verification
    except ImportError:  # the verify extra is not installed: the demo runs without it
        out.print("verification: not installed (pip install 'ouie[verify]')", highlight=False)
        return None
    demo = await start_demo_verification(hub.hub)
    out.print(
        "verification: simulated PTZ cameras and a drone dock are live "
        "(cue a camera as operator; the demo login is a supervisor and can approve a flight)",
        highlight=False,
    )
    return demo


def _hub_for(options: DemoOptions, workdir: Path, temperature_c: float) -> LocalHub:
    return LocalHub(
        broker=options.broker,
        temperature_c=temperature_c,
        workdir=workdir,
        extra_settings={"web": {"site": BUNDLED_SITE}},  # the console draws the test zone
    )


async def run_demo(options: DemoOptions, out: Console) -> dict[str, Any]:
    """Play the demo; returns the combined scorecard (every scenario played)."""
    import tempfile

    settings = SimSettings(
        backend=options.backend,
        realtime=options.is_realtime,
        broker=options.broker,
        onsets=options.onsets,
    )
    classifier = await asyncio.to_thread(create_sim_classifier, settings, options.model_dir)
    schedule = plan(options.scenarios, options.duration_s)
    loop_forever = not options.headless and options.duration_s is None
    view = LiveView()
    cards: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ouie-demo-") as workdir:
        hub = _hub_for(options, Path(workdir), 15.0)
        await hub.start()
        hub.listeners.append(view.on_live)
        server: tuple[Any, asyncio.Task[None]] | None = None
        verification: Any = None
        try:
            if options.console and not options.headless:
                server = await _serve_console(hub, options, out)
                verification = await _start_verification(hub, out)
            origin: datetime | None = None
            if not options.is_realtime:
                origin = utc_now() - timedelta(seconds=schedule.total_s + 60.0)
            items = itertools.cycle(schedule.items) if loop_forever else iter(schedule.items)
            live_ctx: Any = (
                Live(view.render(), console=out, refresh_per_second=4)
                if not options.headless
                else contextlib.nullcontext()
            )
            with live_ctx as live:

                async def refresh() -> None:
                    while live is not None:
                        live.update(view.render())
                        await asyncio.sleep(0.25)

                refresher = asyncio.create_task(refresh()) if live is not None else None
                try:
                    for name, length in items:
                        spec = load_scenario(name)
                        request = RunRequest(
                            scenario=name,
                            settings=settings,
                            dataset_dir=options.dataset_dir,
                            clip_folds=options.clip_folds,
                        )
                        if length < spec.duration_s:
                            spec = spec.model_copy(update={"duration_s": length})
                        built = await asyncio.to_thread(prepare, request, classifier, spec)
                        # the hub hears each scenario's air: c from its temperature
                        hub.hub.fuser.set_temperature(built.spec.atmosphere.temperature_c)
                        view.scenario = name
                        card = await play(built, hub, classifier, settings, origin=origin)
                        cards.append(card)
                        if origin is not None:
                            origin += timedelta(seconds=length + GAP_S)
                        view.footer = _one_line(card)
                        if options.headless:
                            out.print(f"{name}: {_one_line(card)}", highlight=False)
                            out.print(f"  {sources_line(card['sources'])}", highlight=False)
                        elif options.is_realtime:
                            await asyncio.sleep(GAP_S)
                finally:
                    if refresher is not None:
                        refresher.cancel()
        finally:
            if verification is not None:
                await verification.close()
            if server is not None:
                uvicorn_server, task = server
                uvicorn_server.should_exit = True
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 10.0)
            await hub.stop()
    return aggregate(cards)


def _one_line(card: dict[str, Any]) -> str:
    loc = card["localisation_error_m"]
    lat = card["latency_s"]["p95"]
    median = "-" if loc["median"] is None else f"{loc['median']:.1f} m"
    return (
        f"detected {card['detected']}/{card['events']}, false alarms {card['false_alarms']}, "
        f"mislabelled {card['mislabelled']}, located shots {loc['n']} "
        f"(median error {median}), latency p95 {'-' if lat is None else f'{lat:.2f} s'}"
    )
