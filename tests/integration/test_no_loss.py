"""No shot is lost when the broker restarts or crashes, the hub dies, or the node restarts.

Issue 18, finding 8: one node, 21 shots, a real Mosquitto. The landed code stored 18 of 21
after a broker restart (the hub's default shared subscription is not restored by Mosquitto
2.0) and 14 of 21 after a broker crash while the hub was down (the node deleted each shot
on the broker's PUBACK; Mosquitto saved its store only at shutdown).

Here every piece is the real one: a private Mosquitto started with ouie's persistence lines
(``ouie.hub.broker.durable_persistence``), a real ``ouie hub`` process with its default MQTT
settings (a plain persistent subscription) and SQLite, and a node process
(``tests/integration/shots_node.py``) publishing through the real ``MqttPublisher`` and
spool, which keeps each shot until the hub's receipt. Each fault is injected mid-stream;
the test then waits for the node to report its spool empty and reads the hub's database:
all 21 shots stored once each, in the order fired. ``test_the_old_defaults_lose_shots``
runs the same crash with the old behaviour and shows the loss the others prevent.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from ouie.hub.db import DeadLetter, Detection
from ouie.hub.service import Hub
from ouie.transport.spool import Spool
from tests.hub.helpers import SITE, register_sensors, settings_for
from tests.integration.hub_process import HubProcess
from tests.integration.mosquitto import Mosquitto
from tests.integration.shots_node import ShotsPlan

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.needs("mosquitto")]

SENSOR = "pe-01"
SHOTS = 21
ROOT = Path(__file__).resolve().parents[2]


class NodeProcess:
    """``shots_node`` in its own process; its stdout lines are collected as they come."""

    def __init__(self, folder: Path, plan: ShotsPlan) -> None:
        self.plan_file = folder / "plan.json"
        self.plan_file.write_text(plan.model_dump_json(), encoding="utf-8")
        self.log = folder / "node.log"
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.shots_node", str(self.plan_file)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                with self._changed:
                    self.lines.append(line.strip())
                    self._changed.notify_all()

    def wait_for(self, line: str, timeout_s: float = 60.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: line in self.lines, timeout_s):
                raise AssertionError(
                    f"node never printed {line!r}; it printed {self.lines[-5:]}\n"
                    + self.log.read_text()
                )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def finish(self, timeout_s: float = 120.0) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@dataclass
class Rig:
    folder: Path
    broker: Mosquitto
    hub: HubProcess
    db_url: str
    nodes: list[NodeProcess] = field(default_factory=list)

    def node(self, **plan: Any) -> NodeProcess:
        node = NodeProcess(
            self.folder,
            ShotsPlan(
                broker_url=self.broker.url,
                spool=self.folder / "node-spool.sqlite3",
                site=SITE,
                sensor_id=SENSOR,
                shots=SHOTS,
                **plan,
            ),
        )
        self.nodes.append(node)
        return node

    def stored(self, expected: int = SHOTS, timeout_s: float = 15.0) -> list[int]:
        """Sequence numbers of the stored shots, in the order the hub stored them."""
        engine = create_engine(self.db_url)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                with engine.connect() as connection:
                    rows = connection.execute(
                        select(Detection.sequence).order_by(Detection.id)
                    ).all()
                if len(rows) >= expected or time.monotonic() > deadline:
                    return [int(row[0]) for row in rows]
                time.sleep(0.2)
        finally:
            engine.dispose()

    def dead_letters(self) -> int:
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as connection:
                count = connection.execute(
                    select(func.count()).select_from(DeadLetter)
                ).scalar_one()
        finally:
            engine.dispose()
        return int(count)


@contextmanager
def running_rig(folder: Path, durable: bool = True, **mqtt: Any) -> Iterator[Rig]:
    broker = Mosquitto(folder / "broker", durable=durable)
    db_url = f"sqlite:///{folder / 'hub.sqlite3'}"
    setup = Hub(settings_for(db_url))
    setup.prepare()
    register_sensors(setup, [(SENSOR, 0.0, 0.0)])
    setup.close()
    hub = HubProcess(
        folder / "hub",
        {
            "database": {"url": db_url, "batch_wait_ms": 10.0},
            # The hub's MQTT defaults, but for where the broker is and a session short
            # enough for a test; share_group is left at its default (a plain subscription).
            "mqtt": {"enabled": True, "url": broker.url, "session_expiry_s": 600, **mqtt},
        },
    )
    rig = Rig(folder, broker, hub, db_url)
    try:
        broker.start()
        hub.start()
        yield rig
    finally:
        for node in rig.nodes:
            node.stop()
        hub.stop()
        broker.stop()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with running_rig(tmp_path) as made:
        yield made


def assert_all_shots_stored_in_order(rig: Rig, node: NodeProcess, fault: str) -> None:
    assert node.finish() == 0, f"{fault}: the node's spool did not empty: {node.lines[-3:]}"
    assert "done" in node.lines
    stored = rig.stored()
    # the figure the issue asks for, shown with -s or in a failure
    in_order = stored == sorted(stored)
    print(f"\n{fault}: {len(set(stored))}/{SHOTS} shots stored, order kept: {in_order}")
    assert len(stored) == len(set(stored)), f"{fault}: a shot was stored twice: {stored}"
    assert stored == list(range(SHOTS)), f"{fault}: shots lost or reordered: {stored}"
    assert rig.dead_letters() == 0


def test_broker_restart_loses_nothing(rig: Rig) -> None:
    node = rig.node()
    node.start()
    node.wait_for("shot 6")
    rig.broker.stop(signal.SIGTERM)
    time.sleep(1.0)  # shots 7.. go to the spool meanwhile
    rig.broker.start()
    assert_all_shots_stored_in_order(rig, node, "broker restart")


def test_broker_kill_with_the_hub_down_loses_nothing(rig: Rig) -> None:
    node = rig.node()
    node.start()
    node.wait_for("shot 4")
    rig.hub.stop()  # shots 5.. wait in the broker for the hub's persistent session
    node.wait_for("shot 14")
    time.sleep(0.3)  # the broker has acknowledged them (PUBACK)
    rig.broker.stop(signal.SIGKILL)
    rig.broker.start()
    rig.hub.start()
    assert_all_shots_stored_in_order(rig, node, "broker kill with the hub down")


def test_broker_kill_without_durable_persistence_loses_nothing(tmp_path: Path) -> None:
    """A broker not configured by ouie (saving only at shutdown) loses the hub's session
    and its queue in the crash; the node's receipts alone still bring every shot in (in
    order when the hub is back before the resends, as the hub's onsets sort them anyway)."""
    with running_rig(tmp_path, durable=False) as rig:
        node = rig.node()
        node.start()
        node.wait_for("shot 4")
        rig.hub.stop()
        node.wait_for("shot 14")
        time.sleep(0.3)
        rig.broker.stop(signal.SIGKILL)
        rig.broker.start()
        rig.hub.start()
        assert node.finish() == 0, node.lines[-3:]
        stored = rig.stored()
        print(f"\nbroker kill, no durable persistence: {len(set(stored))}/{SHOTS} stored")
        assert sorted(stored) == list(range(SHOTS)), stored


def test_hub_kill_loses_nothing(rig: Rig) -> None:
    node = rig.node()
    node.start()
    node.wait_for("shot 6")
    rig.hub.kill()  # SIGKILL mid-stream: what it had not committed is redelivered
    time.sleep(1.0)
    rig.hub.start()
    assert_all_shots_stored_in_order(rig, node, "hub kill")


def test_node_restart_mid_spool_loses_nothing(rig: Rig) -> None:
    rig.hub.stop()  # nothing gets confirmed: every shot stays in the node's spool
    first = rig.node()
    first.start()
    first.wait_for("shot 10")
    first.kill()  # SIGKILL with 11 unconfirmed shots in the spool
    spool = Spool(rig.folder / "node-spool.sqlite3")
    assert spool.events == 11 and spool.get_meta("next_sequence") == 11
    spool.close()
    second = rig.node()
    second.start()  # resends the 11, then fires shots 11..20
    second.wait_for("shot 15")
    rig.hub.start()
    assert_all_shots_stored_in_order(rig, second, "node restart mid-spool")


def test_broker_restart_with_a_shared_subscription_loses_nothing(tmp_path: Path) -> None:
    """Opt-in shared subscription: Mosquitto 2.0 forgets it on restart and drops what
    arrives before the hub subscribes again; the node's receipts bring those shots back
    (later, so out of order: the hub sorts detections by onset, not arrival)."""
    with running_rig(tmp_path, share_group="ouie-hub") as rig:
        node = rig.node()
        node.start()
        node.wait_for("shot 6")
        rig.broker.stop(signal.SIGTERM)
        time.sleep(1.0)
        rig.broker.start()
        assert node.finish() == 0, node.lines[-3:]
        stored = rig.stored()
        print(f"\nshared subscription, broker restart: {len(set(stored))}/{SHOTS} stored")
        assert sorted(stored) == list(range(SHOTS)), stored


def test_the_old_defaults_lose_shots(tmp_path: Path) -> None:
    """The fault the others guard against, reproduced: a node that forgets a shot on the
    broker's PUBACK, a broker that saves only at shutdown, killed while the hub is down."""
    with running_rig(tmp_path, durable=False) as rig:
        node = rig.node(keep_until="puback")
        node.start()
        node.wait_for("shot 4")
        rig.hub.stop()
        node.wait_for("shot 14")
        time.sleep(0.3)
        rig.broker.stop(signal.SIGKILL)
        rig.broker.start()
        rig.hub.start()
        assert node.finish() == 0  # the node believes all was delivered
        stored = rig.stored(timeout_s=3.0)
        print(f"\nold defaults, broker kill with the hub down: {len(stored)}/{SHOTS} stored")
        assert len(stored) < SHOTS
