"""Verification for ``ouie demo``: loopback peers at the Saint-Étienne site, wired to a hub.

A composition root, so it lives with the simulator: it wires ``ouie.verify`` (a library of
actions) to the hub, which ``ouie.verify`` itself never imports.

``start_demo_verification(hub)`` (called on the hub's event loop, after ``hub.start()``):

- starts one loopback ONVIF PTZ device per camera of the bundled site
  (``ouie.verify.peers.onvif_device``; real SOAP over HTTP with WS-Security digest) and a
  MAVLink vehicle in the site's drone dock (``ouie.verify.peers.mavlink_vehicle``, real
  MAVLink 2 over loopback UDP);
- configures those cameras (position, lens height, heading from ``site.yaml``; the
  password stored only as a Fernet token under a key made for this run) and the dock, with
  demo flight rules (Specific category, STS-02, BVLOS, operator registration on file,
  night flight allowed with the dock's green light so the demo works at any hour);
- builds a ``VerificationService`` whose audit sink is the hub's hash-chained log and
  attaches it (``ouie.hub.verification.attach``), so the console's camera-cue and drone
  buttons work and every action is audited.

``await demo.close()`` detaches the service and stops the peers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ouie.config.cameras import OnvifPtzCamera, PtzLimits
from ouie.config.drones import DroneDock, FlightRules
from ouie.config.verify import CueingSettings, VerifySettings
from ouie.core.labels import EventLabel
from ouie.hub.service import Hub
from ouie.hub.verification import attach, audit_sink, detach
from ouie.sim.site import resolve_site
from ouie.verify.credentials import SecretBox
from ouie.verify.peers.mavlink_vehicle import MavlinkVehicle
from ouie.verify.peers.onvif_device import OnvifPtzDevice
from ouie.verify.service import VerificationService

DEMO_SITE = "saint-etienne"
DEMO_OPERATOR_REGISTRATION = "FRA-OUIE-DEMO"


@dataclass
class DemoVerification:
    hub: Hub
    service: VerificationService
    devices: dict[str, OnvifPtzDevice] = field(default_factory=dict)  # camera id → device
    vehicle: MavlinkVehicle | None = None
    closed: bool = False

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.hub.verification is self.service:
            await detach(self.hub)
        else:
            await self.service.close()
        for device in self.devices.values():
            await asyncio.to_thread(device.stop)
        if self.vehicle is not None:
            await asyncio.to_thread(self.vehicle.stop)


def demo_settings(
    devices: dict[str, OnvifPtzDevice],
    vehicle: MavlinkVehicle,
    box: SecretBox,
    *,
    site: str = DEMO_SITE,
    auto_cue: tuple[EventLabel, ...] = (),
) -> VerifySettings:
    """Cameras and the dock of ``site`` pointed at the given loopback peers."""
    spec = resolve_site(site).spec
    cameras = [
        OnvifPtzCamera(
            id=c.id,
            name=c.id,
            lat=c.lat,
            lon=c.lon,
            height_m=max(c.height_m, 0.5),
            onvif_url=devices[c.id].base_url,
            username=devices[c.id].username,
            password_enc=box.encrypt(devices[c.id].password),
            ptz=PtzLimits(heading_deg=c.heading_deg),
            max_range_m=max(c.range_m, 150.0),
            cue_mode="absolute",
        )
        for c in spec.cameras
        if c.id in devices
    ]
    dock = spec.drone_docks[0]
    docks = [
        DroneDock(
            id=dock.id,
            name=dock.id,
            lat=dock.lat,
            lon=dock.lon,
            connection=vehicle.address,
            transit_altitude_m=40.0,
            standoff_m=30.0,
            orbit_turns=2.0,
            vlos_m=500.0,
        )
    ]
    rules = FlightRules(
        operator_registration=DEMO_OPERATOR_REGISTRATION,
        night_flight_allowed=True,
        category="specific",
        scenario="STS-02",
        operation="BVLOS",
    )
    return VerifySettings(
        cameras=cameras,
        docks=docks,
        flight_rules=rules,
        cueing=CueingSettings(auto_cue_labels=list(auto_cue)),
    )


async def start_demo_verification(
    hub: Hub,
    *,
    site: str = DEMO_SITE,
    cameras: int = 2,
    time_scale: float = 3.0,
    auto_cue: tuple[EventLabel, ...] = (),
    warm_cameras: bool = True,
) -> DemoVerification:
    """Start the loopback camera(s) and drone, and attach verification to ``hub``.

    Call it on the hub's event loop. ``time_scale`` speeds the simulated flight up."""
    spec = resolve_site(site).spec
    if not spec.drone_docks:
        raise ValueError(f"site {site} has no drone dock")
    devices = {c.id: OnvifPtzDevice(move_time_s=0.3).start() for c in spec.cameras[:cameras]}
    dock = spec.drone_docks[0]
    vehicle = MavlinkVehicle(
        (dock.lat, dock.lon), time_scale=time_scale, heartbeat_s=0.5, position_hz=5.0
    ).start()
    box = SecretBox(SecretBox.generate_key())
    settings = demo_settings(devices, vehicle, box, site=site, auto_cue=auto_cue)
    service = VerificationService(settings, audit=audit_sink(hub), secrets=box)
    demo = DemoVerification(hub, service, devices, vehicle)
    try:
        await service.start(warm_cameras=warm_cameras)
    except Exception:
        await demo.close()
        raise
    attach(hub, service)
    return demo
