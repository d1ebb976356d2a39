"""A MAVLink 2 multicopter simulator on loopback UDP, speaking the real messages (pymavlink).

It behaves like an ArduCopter vehicle as far as a ground station sees it:

- HEARTBEAT (quadrotor, ArduPilot, armed flag, custom mode) every ``heartbeat_s``;
- the mission upload handshake: MISSION_COUNT → MISSION_REQUEST_INT for each item
  (re-requested if an item does not arrive) → MISSION_ITEM_INT → MISSION_ACK; a
  MISSION_ACK from the GCS cancels the transfer;
- COMMAND_LONG with COMMAND_ACK for DO_SET_MODE, COMPONENT_ARM_DISARM, NAV_TAKEOFF,
  MISSION_START and NAV_RETURN_TO_LAUNCH (anything else: UNSUPPORTED);
- flight along the uploaded mission: take-off climb, waypoints, ROI, LOITER_TURNS orbits,
  LOITER_TIME, RTL (back home, descend, land, disarm), with GLOBAL_POSITION_INT at
  ``position_hz``, MISSION_CURRENT and MISSION_ITEM_REACHED.

``time_scale`` speeds the clock up so a tests' mission takes a second or two. Fault
injection for tests: ``ignore_first_count`` (the GCS must re-send MISSION_COUNT),
``drop_item`` (one item request is not answered until re-requested), ``deny_arm``.
It binds ``udpin:127.0.0.1:<port>``; the ground station connects with
``udpout:127.0.0.1:<port>``.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ouie.core.geometry import LocalFrame

os.environ.setdefault("MAVLINK20", "1")

MAV_TYPE_QUADROTOR = 2
MAV_AUTOPILOT_ARDUPILOTMEGA = 3
MAV_MODE_FLAG_CUSTOM_MODE_ENABLED = 1
MAV_MODE_FLAG_SAFETY_ARMED = 128
MAV_STATE_STANDBY = 3
MAV_STATE_ACTIVE = 4
MODE_GUIDED, MODE_AUTO, MODE_RTL, MODE_LAND, MODE_STABILIZE = 4, 3, 6, 9, 0
ACCEPTED, DENIED, UNSUPPORTED, FAILED = 0, 2, 3, 4


@dataclass
class ReceivedItem:
    seq: int
    command: int
    frame: int
    lat: float
    lon: float
    alt: float
    params: tuple[float, float, float, float]


@dataclass
class _Vehicle:
    east: float = 0.0
    north: float = 0.0
    alt: float = 0.0
    heading: float = 0.0
    speed: float = 0.0
    armed: bool = False
    mode: int = MODE_STABILIZE
    takeoff_alt: float | None = None
    item: int = 0
    orbit_angle: float | None = None
    orbit_travelled: float = 0.0
    loiter_until: float | None = None
    reached: list[int] = field(default_factory=list)


class MavlinkVehicle:
    def __init__(
        self,
        home: tuple[float, float] = (45.4397, 4.3872),
        *,
        port: int = 0,
        system_id: int = 1,
        speed_m_s: float = 10.0,
        climb_m_s: float = 3.0,
        time_scale: float = 1.0,
        heartbeat_s: float = 1.0,
        position_hz: float = 10.0,
        ignore_first_count: bool = False,
        drop_item: int | None = None,
        deny_arm: bool = False,
    ) -> None:
        from pymavlink import mavutil

        self.home = home
        self.frame = LocalFrame(*home)
        self.system_id = system_id
        self.speed_m_s = speed_m_s
        self.climb_m_s = climb_m_s
        self.time_scale = time_scale
        self.heartbeat_s = heartbeat_s
        self.position_hz = position_hz
        self.ignore_first_count = ignore_first_count
        self.drop_item = drop_item
        self.deny_arm = deny_arm
        self.conn: Any = mavutil.mavlink_connection(
            f"udpin:127.0.0.1:{port}", source_system=system_id, source_component=1
        )
        self.port = int(self.conn.port.getsockname()[1])
        self.mission: list[ReceivedItem] = []
        self.commands: list[tuple[int, tuple[float, ...], int]] = []  # command, params, result
        self.gcs_heartbeats = 0
        self.count_messages = 0
        self.item_requests: list[int] = []
        self.positions_sent = 0
        self.track: list[tuple[float, float, float]] = []  # lat, lon, alt at each position
        self.v = _Vehicle()
        self._upload: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"udpout:127.0.0.1:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> MavlinkVehicle:
        self._thread = threading.Thread(target=self._run, name="mavlink-vehicle", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.conn.close()

    def __enter__(self) -> MavlinkVehicle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state for tests ------------------------------------------------------------------

    @property
    def armed(self) -> bool:
        return self.v.armed

    @property
    def mode(self) -> int:
        return self.v.mode

    def position(self) -> tuple[float, float, float]:
        with self._lock:
            lat, lon = self.frame.to_latlon(self.v.east, self.v.north)
            return lat, lon, self.v.alt

    def command_ids(self) -> list[int]:
        return [c for c, _, _ in self.commands]

    def wait(self, predicate: Any, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.01)
        return False

    # -- loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        last = time.monotonic()
        next_hb = 0.0
        next_pos = 0.0
        while not self._stop.is_set():
            msg = self.conn.recv_match(blocking=True, timeout=0.005)
            while msg is not None:
                self._handle(msg)
                msg = self.conn.recv_match(blocking=False)
            now = time.monotonic()
            with self._lock:
                self._step((now - last) * self.time_scale, now)
            last = now
            if now >= next_hb:
                self._heartbeat()
                next_hb = now + self.heartbeat_s
            if now >= next_pos:
                self._send_position()
                next_pos = now + 1.0 / self.position_hz
            self._upload_watchdog(now)

    def _heartbeat(self) -> None:
        base = MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (
            MAV_MODE_FLAG_SAFETY_ARMED if self.v.armed else 0
        )
        self.conn.mav.heartbeat_send(
            MAV_TYPE_QUADROTOR,
            MAV_AUTOPILOT_ARDUPILOTMEGA,
            base,
            self.v.mode,
            MAV_STATE_ACTIVE if self.v.armed else MAV_STATE_STANDBY,
        )

    def _send_position(self) -> None:
        with self._lock:
            lat, lon = self.frame.to_latlon(self.v.east, self.v.north)
            alt, heading, speed = self.v.alt, self.v.heading, self.v.speed
        vx = speed * math.cos(math.radians(heading))
        vy = speed * math.sin(math.radians(heading))
        self.conn.mav.global_position_int_send(
            int(time.monotonic() * 1000) & 0xFFFFFFFF,
            round(lat * 1e7),
            round(lon * 1e7),
            round(alt * 1000),
            round(alt * 1000),
            round(vx * 100),
            round(vy * 100),
            0,
            round(heading * 100) % 36000,
        )
        self.positions_sent += 1
        self.track.append((lat, lon, alt))

    # -- messages -------------------------------------------------------------------------

    def _handle(self, msg: Any) -> None:
        kind = msg.get_type()
        if kind == "HEARTBEAT":
            self.gcs_heartbeats += 1
        elif kind == "MISSION_COUNT":
            self.count_messages += 1
            if self.ignore_first_count and self.count_messages == 1:
                return
            self._upload = {
                "count": int(msg.count),
                "items": {},
                "next": 0,
                "asked": 0.0,
                "dropped": False,
            }
            self._request(0)
        elif kind == "MISSION_ITEM_INT" and self._upload is not None:
            seq = int(msg.seq)
            if seq != self._upload["next"]:
                return
            self._upload["items"][seq] = ReceivedItem(
                seq,
                int(msg.command),
                int(msg.frame),
                msg.x / 1e7,
                msg.y / 1e7,
                float(msg.z),
                (float(msg.param1), float(msg.param2), float(msg.param3), float(msg.param4)),
            )
            if seq + 1 < self._upload["count"]:
                self._request(seq + 1)
            else:
                with self._lock:
                    self.mission = [self._upload["items"][i] for i in range(self._upload["count"])]
                    self.v.item = 0
                self._upload = None
                self.conn.mav.mission_ack_send(msg.get_srcSystem(), msg.get_srcComponent(), 0, 0)
        elif kind == "MISSION_ACK" and self._upload is not None:
            self._upload = None  # the GCS cancelled the transfer
        elif kind == "COMMAND_LONG":
            self._command(msg)

    def _request(self, seq: int) -> None:
        assert self._upload is not None
        self._upload["next"] = seq
        self._upload["asked"] = time.monotonic()
        self.item_requests.append(seq)
        if self.drop_item == seq and not self._upload["dropped"]:
            self._upload["dropped"] = True
            return  # lost request: the GCS times out and re-sends its last item
        self.conn.mav.mission_request_int_send(255, 190, seq, 0)

    def _upload_watchdog(self, now: float) -> None:
        upload = self._upload
        if upload is not None and now - upload["asked"] > 0.5:
            self._request(upload["next"])

    def _command(self, msg: Any) -> None:
        command = int(msg.command)
        params = (
            msg.param1,
            msg.param2,
            msg.param3,
            msg.param4,
            msg.param5,
            msg.param6,
            msg.param7,
        )
        with self._lock:
            v = self.v
            result = UNSUPPORTED
            if command == 176:  # DO_SET_MODE
                v.mode, result = int(params[1]), ACCEPTED
            elif command == 400:  # ARM / DISARM
                if params[0] >= 0.5:
                    if self.deny_arm or v.mode not in (MODE_GUIDED, MODE_STABILIZE, MODE_AUTO):
                        result = DENIED
                    else:
                        v.armed, result = True, ACCEPTED
                else:
                    result = ACCEPTED if v.alt <= 0.1 else DENIED
                    if result == ACCEPTED:
                        v.armed = False
            elif command == 22:  # NAV_TAKEOFF
                if v.armed and v.mode == MODE_GUIDED and params[6] > 0:
                    v.takeoff_alt, result = float(params[6]), ACCEPTED
                else:
                    result = FAILED
            elif command == 300:  # MISSION_START
                if v.armed and self.mission:
                    v.mode, v.item, result = MODE_AUTO, 1, ACCEPTED
                    self.conn.mav.mission_current_send(1)
                else:
                    result = FAILED
            elif command == 20:  # RETURN_TO_LAUNCH
                v.mode, result = MODE_RTL, ACCEPTED
            self.commands.append((command, tuple(float(p) for p in params), result))
        self.conn.mav.command_ack_send(command, result)

    # -- physics --------------------------------------------------------------------------

    def _fly_to(self, east: float, north: float, alt: float, dt: float) -> bool:
        v = self.v
        dz = alt - v.alt
        climb = max(-self.climb_m_s * dt, min(self.climb_m_s * dt, dz))
        v.alt += climb
        de, dn = east - v.east, north - v.north
        dist = math.hypot(de, dn)
        step = self.speed_m_s * dt
        if dist <= step:
            v.east, v.north = east, north
            v.speed = dist / dt if dt > 0 else 0.0
        else:
            v.east += de / dist * step
            v.north += dn / dist * step
            v.speed = self.speed_m_s
            v.heading = math.degrees(math.atan2(de, dn)) % 360.0
        return dist <= step and abs(alt - v.alt) < 0.5

    def _reach(self, seq: int) -> None:
        self.v.reached.append(seq)
        self.conn.mav.mission_item_reached_send(seq)

    def _advance(self) -> None:
        self._reach(self.v.item)
        self.v.item += 1
        self.v.orbit_angle = None
        self.v.loiter_until = None
        if self.v.item < len(self.mission):
            self.conn.mav.mission_current_send(self.v.item)

    def _step(self, dt: float, now: float) -> None:
        v = self.v
        if not v.armed or dt <= 0:
            v.speed = 0.0
            return
        if v.mode == MODE_GUIDED and v.takeoff_alt is not None:
            self._fly_to(v.east, v.north, v.takeoff_alt, dt)
        elif v.mode == MODE_RTL:
            # home at the current altitude first, then descend (a climb back to 1 m here
            # used to cancel a descent step smaller than 1 m: the vehicle never landed)
            if not self._fly_to(0.0, 0.0, v.alt, dt) and math.hypot(v.east, v.north) > 0.5:
                return
            v.alt = max(0.0, v.alt - self.climb_m_s * dt)
            if v.alt <= 0.0:
                v.armed, v.mode, v.speed, v.takeoff_alt = False, MODE_LAND, 0.0, None
        elif v.mode == MODE_AUTO:
            self._step_mission(dt, now)

    def _step_mission(self, dt: float, now: float) -> None:
        v = self.v
        if v.item >= len(self.mission):
            v.mode = MODE_RTL
            return
        item = self.mission[v.item]
        east, north = self.frame.to_en(item.lat, item.lon)
        if item.command == 22:  # TAKEOFF
            if self._fly_to(v.east, v.north, item.alt, dt):
                self._advance()
        elif item.command == 16:  # WAYPOINT
            if self._fly_to(east, north, item.alt, dt):
                self._advance()
        elif item.command == 18:  # LOITER_TURNS around (east, north), radius param3
            radius = abs(item.params[2]) or 10.0
            if v.orbit_angle is None:
                v.orbit_angle = math.atan2(v.east - east, v.north - north)
                v.orbit_travelled = 0.0
            step = self.speed_m_s * dt / radius
            v.orbit_angle += step if item.params[2] >= 0 else -step
            v.orbit_travelled += step
            v.east = east + radius * math.sin(v.orbit_angle)
            v.north = north + radius * math.cos(v.orbit_angle)
            v.alt = item.alt
            v.speed = self.speed_m_s
            if v.orbit_travelled >= item.params[0] * 2.0 * math.pi:
                self._advance()
        elif item.command == 19:  # LOITER_TIME
            if v.loiter_until is None:
                if not self._fly_to(east, north, item.alt, dt):
                    return
                v.loiter_until = now + item.params[0] / self.time_scale
            v.speed = 0.0
            if now >= v.loiter_until:
                self._advance()
        elif item.command == 20:  # RETURN_TO_LAUNCH
            self._advance()
            v.mode = MODE_RTL
        else:  # DO_* commands and anything else: done at once
            self._advance()
