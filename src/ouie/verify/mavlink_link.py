"""A MAVLink 2 ground-station link with pymavlink: heartbeat, telemetry, commands, missions.

One reader thread per link receives everything from the vehicle and keeps
``VehicleState`` current (HEARTBEAT: armed flag, mode, state; GLOBAL_POSITION_INT:
position, relative altitude, heading; MISSION_CURRENT / MISSION_ITEM_REACHED); command
acknowledgements and mission-protocol messages are handed to whichever call waits for
them. The link sends its own GCS HEARTBEAT every second (vehicles use it for their GCS
failsafe, and a ``udpin`` vehicle learns where to answer from it).

``upload_mission`` runs the MAVLink mission protocol: MISSION_COUNT → the vehicle asks for
each item with MISSION_REQUEST_INT (or the legacy MISSION_REQUEST) → MISSION_ITEM_INT →
… → MISSION_ACK. A missing request is answered by re-sending (the count, or the last
item) up to ``retries`` times. ``command_long`` sends COMMAND_LONG and waits for the
matching COMMAND_ACK, re-sending with an incremented ``confirmation`` on timeout.

The calls block (pymavlink is synchronous); async callers run them with
``asyncio.to_thread``. Sends are serialised by a lock, so an RTL can be sent from
another thread while an upload is in progress.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ouie.verify.drone import MissionItem

os.environ.setdefault("MAVLINK20", "1")  # pymavlink reads this when mavutil is imported

log = logging.getLogger(__name__)

# common.xml values used by the link (also in pymavlink's generated module).
MAV_TYPE_GCS = 6
MAV_AUTOPILOT_INVALID = 8
MAV_STATE_ACTIVE = 4
MAV_MODE_FLAG_SAFETY_ARMED = 128
MAV_MODE_FLAG_CUSTOM_MODE_ENABLED = 1
MAV_MISSION_TYPE_MISSION = 0
MAV_CMD_COMPONENT_ARM_DISARM = 400
MAV_CMD_DO_SET_MODE = 176
MAV_CMD_MISSION_START = 300
MAV_CMD_NAV_TAKEOFF = 22
MAV_CMD_NAV_RETURN_TO_LAUNCH = 20
MAV_COMP_ID_MISSIONPLANNER = 190

MAV_RESULT = {
    0: "ACCEPTED",
    1: "TEMPORARILY_REJECTED",
    2: "DENIED",
    3: "UNSUPPORTED",
    4: "FAILED",
    5: "IN_PROGRESS",
    6: "CANCELLED",
}
MAV_MISSION_RESULT = {
    0: "ACCEPTED",
    1: "ERROR",
    2: "UNSUPPORTED_FRAME",
    3: "UNSUPPORTED",
    4: "NO_SPACE",
    5: "INVALID",
    6: "INVALID_PARAM1",
    13: "INVALID_SEQUENCE",
    14: "DENIED",
    15: "OPERATION_CANCELLED",
}
# ArduCopter custom modes.
COPTER_MODES = {"STABILIZE": 0, "AUTO": 3, "GUIDED": 4, "LOITER": 5, "RTL": 6, "LAND": 9}


class MavlinkError(RuntimeError):
    pass


@dataclass(frozen=True)
class VehicleState:
    """The last thing heard from the vehicle (what the console map shows)."""

    connected: bool = False
    last_heartbeat: float | None = None  # time.monotonic()
    armed: bool = False
    custom_mode: int | None = None
    system_status: int | None = None
    lat: float | None = None
    lon: float | None = None
    relative_alt_m: float | None = None
    heading_deg: float | None = None
    ground_speed_m_s: float | None = None
    mission_current: int | None = None
    last_reached: int | None = None
    positions: int = 0  # GLOBAL_POSITION_INT received

    def to_json(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "armed": self.armed,
            "custom_mode": self.custom_mode,
            "lat": self.lat,
            "lon": self.lon,
            "relative_alt_m": self.relative_alt_m,
            "heading_deg": self.heading_deg,
            "ground_speed_m_s": self.ground_speed_m_s,
            "mission_current": self.mission_current,
            "last_reached": self.last_reached,
        }


StateListener = Callable[[VehicleState], None]


class MavlinkLink:
    def __init__(
        self,
        connection: str,
        *,
        target_system: int = 1,
        target_component: int = 1,
        source_system: int = 255,
        source_component: int = MAV_COMP_ID_MISSIONPLANNER,
        heartbeat_s: float = 1.0,
        heartbeat_timeout_s: float = 5.0,
    ) -> None:
        self.connection = connection
        self.target_system = target_system
        self.target_component = target_component
        self.source_system = source_system
        self.source_component = source_component
        self.heartbeat_s = heartbeat_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.state = VehicleState()
        self.listeners: list[StateListener] = []
        self._conn: Any = None
        self._send_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._heartbeat = threading.Event()
        self._stop = threading.Event()
        self._acks: queue.Queue[Any] = queue.Queue()
        self._mission: queue.Queue[Any] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._ack_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MavlinkLink({self.connection!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def open(self, timeout_s: float = 10.0) -> None:
        """Connect and wait for the vehicle's first HEARTBEAT."""
        from pymavlink import mavutil

        self._conn = mavutil.mavlink_connection(
            self.connection,
            source_system=self.source_system,
            source_component=self.source_component,
            autoreconnect=True,
        )
        self._stop.clear()
        for target, name in ((self._read_loop, "reader"), (self._heartbeat_loop, "heartbeat")):
            thread = threading.Thread(target=target, name=f"mavlink-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if not self._heartbeat.wait(timeout_s):
            self.close()
            raise MavlinkError(
                f"no HEARTBEAT from the vehicle on {self.connection} in {timeout_s:.0f} s"
            )

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._threads = []
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None

    @property
    def is_open(self) -> bool:
        return self._conn is not None and not self._stop.is_set()

    # -- threads --------------------------------------------------------------------------

    def _send(self, build: Callable[[Any], Any]) -> None:
        if self._conn is None:
            raise MavlinkError("link is closed")
        with self._send_lock:
            build(self._conn.mav)

    def _heartbeat_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._send(
                    lambda mav: mav.heartbeat_send(
                        MAV_TYPE_GCS, MAV_AUTOPILOT_INVALID, 0, 0, MAV_STATE_ACTIVE
                    )
                )
            except (OSError, MavlinkError) as exc:
                log.debug("heartbeat send failed: %s", exc)
            self._stop.wait(self.heartbeat_s)

    def _update(self, **changes: Any) -> None:
        with self._state_lock:
            self.state = replace(self.state, **changes)
            state = self.state
        for listener in list(self.listeners):
            try:
                listener(state)
            except Exception:  # a listener must not kill the reader
                log.exception("vehicle state listener failed")

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            conn = self._conn
            if conn is None:
                return
            try:
                msg = conn.recv_match(blocking=True, timeout=0.1)
            except (OSError, ValueError) as exc:
                log.debug("mavlink receive error: %s", exc)
                time.sleep(0.05)
                continue
            if msg is None:
                last = self.state.last_heartbeat
                if self.state.connected and (
                    last is None or time.monotonic() - last > self.heartbeat_timeout_s
                ):
                    self._update(connected=False)
                continue
            if msg.get_srcSystem() != self.target_system:
                continue
            kind = msg.get_type()
            if kind == "HEARTBEAT":
                if msg.type == MAV_TYPE_GCS:
                    continue
                self._update(
                    connected=True,
                    last_heartbeat=time.monotonic(),
                    armed=bool(msg.base_mode & MAV_MODE_FLAG_SAFETY_ARMED),
                    custom_mode=int(msg.custom_mode),
                    system_status=int(msg.system_status),
                )
                self._heartbeat.set()
            elif kind == "GLOBAL_POSITION_INT":
                self._update(
                    lat=msg.lat / 1e7,
                    lon=msg.lon / 1e7,
                    relative_alt_m=msg.relative_alt / 1000.0,
                    heading_deg=None if msg.hdg == 65535 else msg.hdg / 100.0,
                    ground_speed_m_s=((msg.vx**2 + msg.vy**2) ** 0.5) / 100.0,
                    positions=self.state.positions + 1,
                )
            elif kind == "MISSION_CURRENT":
                self._update(mission_current=int(msg.seq))
            elif kind == "MISSION_ITEM_REACHED":
                self._update(last_reached=int(msg.seq))
            elif kind == "COMMAND_ACK":
                self._acks.put(msg)
            elif kind in ("MISSION_REQUEST_INT", "MISSION_REQUEST", "MISSION_ACK"):
                self._mission.put(msg)

    # -- commands -------------------------------------------------------------------------

    def command_long(
        self,
        command: int,
        params: tuple[float, float, float, float, float, float, float] = (0, 0, 0, 0, 0, 0, 0),
        *,
        timeout_s: float = 1.5,
        retries: int = 3,
    ) -> str:
        """Send COMMAND_LONG; the MAV_RESULT name of its COMMAND_ACK, or ``"timeout"``."""
        with self._ack_lock:  # one command in flight at a time per link
            for confirmation in range(retries + 1):

                def send(mav: Any, c: int = confirmation) -> None:
                    mav.command_long_send(
                        self.target_system, self.target_component, command, c, *params
                    )

                self._send(send)
                deadline = time.monotonic() + timeout_s
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        ack = self._acks.get(timeout=left)
                    except queue.Empty:
                        break
                    if int(ack.command) != command:
                        continue
                    result = int(ack.result)
                    if result == 5:  # IN_PROGRESS: the final ACK follows
                        deadline = time.monotonic() + timeout_s
                        continue
                    return MAV_RESULT.get(result, f"RESULT_{result}")
            return "timeout"

    def set_mode(self, mode: str) -> str:
        custom = COPTER_MODES[mode]
        return self.command_long(
            MAV_CMD_DO_SET_MODE, (MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, custom, 0, 0, 0, 0, 0)
        )

    def arm(self) -> str:
        return self.command_long(MAV_CMD_COMPONENT_ARM_DISARM, (1, 0, 0, 0, 0, 0, 0))

    def takeoff(self, altitude_m: float) -> str:
        return self.command_long(MAV_CMD_NAV_TAKEOFF, (0, 0, 0, 0, 0, 0, altitude_m))

    def start_mission(self) -> str:
        return self.command_long(MAV_CMD_MISSION_START, (0, 0, 0, 0, 0, 0, 0))

    def return_to_launch(self) -> str:
        return self.command_long(MAV_CMD_NAV_RETURN_TO_LAUNCH)

    # -- mission protocol -----------------------------------------------------------------

    def _drain_mission(self) -> None:
        while True:
            try:
                self._mission.get_nowait()
            except queue.Empty:
                return

    def _send_item(self, item: MissionItem) -> None:
        self._send(
            lambda mav: mav.mission_item_int_send(
                self.target_system,
                self.target_component,
                item.seq,
                item.frame,
                item.command,
                0,  # current
                item.autocontinue,
                item.param1,
                item.param2,
                item.param3,
                item.param4,
                round(item.lat * 1e7),
                round(item.lon * 1e7),
                item.alt_m,
                MAV_MISSION_TYPE_MISSION,
            )
        )

    def upload_mission(
        self,
        items: list[MissionItem],
        *,
        item_timeout_s: float = 1.0,
        retries: int = 5,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> str:
        """Run the upload handshake; the MAV_MISSION_RESULT name of the final MISSION_ACK."""
        if [i.seq for i in items] != list(range(len(items))):
            raise MavlinkError("mission items must be numbered 0..n-1")
        self._drain_mission()

        def send_count(mav: Any) -> None:
            mav.mission_count_send(
                self.target_system, self.target_component, len(items), MAV_MISSION_TYPE_MISSION
            )

        self._send(send_count)
        last_sent: int | None = None
        misses = 0
        while True:
            if cancelled():
                self._send(
                    lambda mav: mav.mission_ack_send(
                        self.target_system, self.target_component, 15, MAV_MISSION_TYPE_MISSION
                    )
                )
                return "OPERATION_CANCELLED"
            try:
                msg = self._mission.get(timeout=item_timeout_s)
            except queue.Empty:
                misses += 1
                if misses > retries:
                    return "timeout"
                if last_sent is None:
                    self._send(send_count)
                else:
                    self._send_item(items[last_sent])
                continue
            if getattr(msg, "mission_type", 0) != MAV_MISSION_TYPE_MISSION:
                continue
            if msg.get_type() == "MISSION_ACK":
                return MAV_MISSION_RESULT.get(int(msg.type), f"RESULT_{int(msg.type)}")
            seq = int(msg.seq)
            if not 0 <= seq < len(items):
                continue
            misses = 0
            self._send_item(items[seq])
            last_sent = seq
