"""``ouie bench verify``: how fast the verification actions are, against the loopback peers.

- camera: incident handed to the cuer → the ONVIF AbsoluteMove (or GotoPreset) answered by
  the camera, over a warm session (the hub keeps one per camera); the first cue of a cold
  session (GetServices, WSDL load, GetProfiles included); → GetStatus reporting IDLE at the
  target, with a camera that takes ``move_time_s`` to slew.
- drone: supervisor approval → MISSION_ACK ACCEPTED for the 7-item mission (approval
  check, audit, MAVLink upload handshake); the first with the link opening (waiting for
  the vehicle's HEARTBEAT), then over an open link.
- webhook: incident notice → the signed POST received by a local HTTP receiver.

Timings are wall-clock on this machine with both ends on loopback: they measure ouie's
own overhead and the protocol round trips, not a real camera's motors or a radio link.
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ouie.config.cameras import CameraPreset, OnvifPtzCamera, PtzLimits
from ouie.config.drones import DroneDock, FlightRules
from ouie.config.outputs import RetryPolicy, WebhookOutput
from ouie.core.labels import EventLabel
from ouie.verify.cctv import CameraCuer
from ouie.verify.credentials import SecretBox
from ouie.verify.dispatch import DroneDispatcher, SupervisorApproval
from ouie.verify.events import EventLog
from ouie.verify.incident import IncidentNotice, IncidentRef
from ouie.verify.outputs import Outputs
from ouie.verify.peers.http_receiver import HttpReceiver
from ouie.verify.peers.mavlink_vehicle import MavlinkVehicle
from ouie.verify.peers.onvif_device import DevicePreset, OnvifPtzDevice
from ouie.verify.plugin import OutputContext

SITE = (45.4397, 4.3872)


class VerifyBench(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: str
    machine: str
    python: str
    camera_cues: int
    camera_cue_ms_p50: float
    camera_cue_ms_max: float
    camera_cue_cold_ms: float
    camera_preset_cue_ms_p50: float
    camera_settled_ms_p50: float
    camera_move_time_s: float
    missions: int
    approval_to_upload_ms_p50: float
    approval_to_upload_ms_max: float
    approval_to_upload_cold_ms: float
    mission_items: int
    webhooks: int
    webhook_delivery_ms_p50: float
    webhook_delivery_ms_max: float


def _incident(n: int, offset_m: float = 0.0) -> IncidentRef:
    return IncidentRef(
        id=f"bench-{n}",
        site="bench",
        label=EventLabel.GUNSHOT,
        lat=SITE[0] + (80.0 + offset_m) / 111_000.0,
        lon=SITE[1] + 60.0 / 78_000.0,
        radius_m=8.0,
        time=datetime.now(UTC),
        sensor_count=4,
    )


def _p50(values: list[float]) -> float:
    return round(statistics.median(values), 2)


async def bench_camera(cues: int, move_time_s: float) -> dict[str, float]:
    box = SecretBox(SecretBox.generate_key())
    with OnvifPtzDevice(
        presets=[DevicePreset("1", "square", 0.2, -0.3, 0.1)], move_time_s=0.0
    ) as device:
        preset_lat, preset_lon = _incident(0).lat, _incident(0).lon
        camera = OnvifPtzCamera(
            id="cam-1",
            lat=SITE[0],
            lon=SITE[1],
            height_m=8.0,
            onvif_url=device.base_url,
            username=device.username,
            password_enc=box.encrypt(device.password),
            ptz=PtzLimits(),
            cue_mode="absolute",
            presets=[CameraPreset(token="1", name="square", lat=preset_lat, lon=preset_lon)],
        )
        cuer = CameraCuer([camera], box, EventLog())
        cold = await cuer.cue(_incident(0), actor="bench")
        times = []
        for n in range(cues):
            result = await cuer.cue(_incident(n + 1, offset_m=n), actor="bench")
            times.append(result.command_ms)
        preset_cam = camera.model_copy(update={"id": "cam-preset", "cue_mode": "preset"})
        preset_cuer = CameraCuer([preset_cam], box, EventLog())
        await preset_cuer.cue(_incident(0), actor="bench")
        preset_times = [
            (await preset_cuer.cue(_incident(n), actor="bench")).command_ms for n in range(cues)
        ]
        await cuer.close()
        await preset_cuer.close()
    with OnvifPtzDevice(move_time_s=move_time_s) as slow:
        camera = camera.model_copy(update={"onvif_url": slow.base_url, "presets": []})
        cuer = CameraCuer([camera], box, EventLog())
        settled = []
        for n in range(max(3, cues // 4)):
            result = await cuer.cue(
                _incident(n, offset_m=30.0 * (n % 2)), actor="bench", wait_settled_s=5.0
            )
            assert result.settled_ms is not None
            settled.append(result.settled_ms)
        await cuer.close()
    return {
        "camera_cue_ms_p50": _p50(times),
        "camera_cue_ms_max": round(max(times), 2),
        "camera_cue_cold_ms": round(cold.command_ms, 2),
        "camera_preset_cue_ms_p50": _p50(preset_times),
        "camera_settled_ms_p50": _p50(settled),
    }


async def bench_drone(missions: int) -> dict[str, float]:
    with MavlinkVehicle(SITE, time_scale=60.0, heartbeat_s=0.1, climb_m_s=5.0) as vehicle:
        dock = DroneDock(id="dock-1", lat=SITE[0], lon=SITE[1], connection=vehicle.address)
        rules = FlightRules(operator_registration="FRA-BENCH", night_flight_allowed=True)
        dispatcher = DroneDispatcher([dock], rules, audit=EventLog())
        times: list[float] = []
        items = 0
        for n in range(missions + 1):
            plan = dispatcher.plan(_incident(n), "dock-1", actor="operator")
            items = len(plan.items)
            approved = dispatcher.approve(
                SupervisorApproval(
                    user="supervisor",
                    role="supervisor",
                    mission_id=plan.mission_id,
                    mission_hash=plan.digest(),
                    confirmed_items=plan.declared_items,
                )
            )
            run = await dispatcher.launch(approved)
            if run.approval_to_upload_ms is None:
                raise RuntimeError(f"bench mission failed: {run.error}")
            times.append(run.approval_to_upload_ms)
            await dispatcher.abort(plan.mission_id, actor="supervisor", reason="bench")
            deadline = time.monotonic() + 30.0
            while dispatcher.runs[plan.mission_id].state != "completed":
                if time.monotonic() > deadline:
                    raise RuntimeError("bench vehicle did not land")
                await asyncio.sleep(0.02)
        await dispatcher.close()
    warm = times[1:]
    return {
        "approval_to_upload_ms_p50": _p50(warm),
        "approval_to_upload_ms_max": round(max(warm), 2),
        "approval_to_upload_cold_ms": round(times[0], 2),
        "mission_items": float(items),
    }


async def bench_webhook(count: int) -> dict[str, float]:
    box = SecretBox(SecretBox.generate_key())
    with HttpReceiver([200]) as receiver:
        config = WebhookOutput(
            id="bench",
            url=receiver.url + "/hook",
            secret_enc=box.encrypt("bench-secret"),
            retry=RetryPolicy(max_attempts=3, initial_s=0.05, jitter=0.0),
        )
        outputs = Outputs([config], OutputContext(secrets=box, audit=EventLog()))
        latencies = []
        for n in range(count):
            started = time.perf_counter()
            await outputs.on_incident(IncidentNotice(change="created", incident=_incident(n)))
            if not await asyncio.to_thread(receiver.wait_for, n + 1, 5.0):
                raise RuntimeError("webhook not received")
            latencies.append((receiver.requests[n].at - started) * 1000.0)
        await outputs.close()
    return {
        "webhook_delivery_ms_p50": _p50(latencies),
        "webhook_delivery_ms_max": round(max(latencies), 2),
    }


async def run_async(cues: int, missions: int, webhooks: int, move_time_s: float) -> VerifyBench:
    camera = await bench_camera(cues, move_time_s)
    drone = await bench_drone(missions)
    hooks = await bench_webhook(webhooks)
    return VerifyBench(
        date=datetime.now(UTC).date().isoformat(),
        machine=f"{platform.machine()} {platform.processor() or platform.system()}",
        python=platform.python_version(),
        camera_cues=cues,
        camera_move_time_s=move_time_s,
        missions=missions,
        webhooks=webhooks,
        mission_items=int(drone.pop("mission_items")),
        **camera,
        **drone,
        **hooks,
    )


def run(
    cues: int = 20, missions: int = 5, webhooks: int = 50, move_time_s: float = 0.3
) -> VerifyBench:
    return asyncio.run(run_async(cues, missions, webhooks, move_time_s))


def write_json(result: VerifyBench, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.model_dump(), indent=2) + "\n", encoding="utf-8")
