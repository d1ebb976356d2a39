"""The hub's one registry of cameras and drone docks, as people are shown them.

Cameras and docks are configured once, in ``verify.yaml`` (the hub's ``verify:`` section),
and the hub knows them through the verification service built from that file
(``hub.verification``, ``ouie.hub.verification``). The verify API ranks, cues and dispatches
from the service; the console's map, incident and admin pages list the same cameras and
docks from here. So a camera the console shows is one the hub can cue, and a deployment's
``verify.yaml`` cannot disagree with what the operator sees. A hub without verification has
no cameras to show; a site plan (``web.site``) is never a source of equipment, because it
describes the digital twin's streets, not what is bolted to the walls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import Field

from ouie.config.cameras import OnvifPtzCamera
from ouie.config.drones import DroneDock
from ouie.core.model_base import StrictModel

if TYPE_CHECKING:
    from ouie.hub.service import Hub


class CameraEntry(StrictModel):
    """A camera as the console draws and lists it (no address, no credentials)."""

    id: str
    name: str
    site: str | None
    lat: float
    lon: float
    heading_deg: float = Field(description="azimuth at pan 0, degrees from true north")
    fov_deg: float = Field(description="horizontal field of view at the widest zoom")
    range_m: float = Field(description="farthest incident it is cued for")

    @classmethod
    def of(cls, camera: OnvifPtzCamera) -> CameraEntry:
        return cls(
            id=camera.id,
            name=camera.name or camera.id,
            site=camera.site,
            lat=camera.lat,
            lon=camera.lon,
            heading_deg=camera.ptz.heading_deg,
            fov_deg=camera.ptz.fov_wide_deg,
            range_m=camera.max_range_m,
        )


class DockEntry(StrictModel):
    """A drone dock as the console draws and lists it (no connection string)."""

    id: str
    name: str
    site: str | None
    lat: float
    lon: float
    range_m: float = Field(description="farthest point a mission from it may reach")

    @classmethod
    def of(cls, dock: DroneDock) -> DockEntry:
        return cls(
            id=dock.id,
            name=dock.name or dock.id,
            site=dock.site,
            lat=dock.lat,
            lon=dock.lon,
            range_m=dock.max_range_m,
        )


class Equipment(StrictModel):
    cameras: tuple[CameraEntry, ...] = ()
    docks: tuple[DockEntry, ...] = ()

    @classmethod
    def of(cls, cameras: Sequence[OnvifPtzCamera], docks: Sequence[DroneDock]) -> Equipment:
        return cls(
            cameras=tuple(CameraEntry.of(c) for c in cameras),
            docks=tuple(DockEntry.of(d) for d in docks),
        )


NO_EQUIPMENT = Equipment()


def equipment(hub: Hub) -> Equipment:
    """The cameras and docks of the hub's verification settings (none without them).

    Read on each call: the service may be attached after the console is mounted (``ouie
    demo`` starts its loopback cameras once the hub runs) and replaced at run time.
    """
    service = hub.verification
    if service is None:
        return NO_EQUIPMENT
    return Equipment.of(service.settings.cameras, service.settings.docks)
