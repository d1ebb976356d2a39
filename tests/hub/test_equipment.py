"""The hub's one registry of cameras and docks: what verify.yaml says, nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from ouie.config.cameras import OnvifPtzCamera, PtzLimits
from ouie.config.drones import DroneDock
from ouie.config.verify import VerifySettings
from ouie.hub.equipment import CameraEntry, DockEntry, equipment

SETTINGS = VerifySettings(
    cameras=[
        OnvifPtzCamera(
            id="cam-1",
            site="s1",
            lat=45.44,
            lon=4.387,
            height_m=8.0,
            onvif_url="http://10.0.0.21",
            username="ouie",
            ptz=PtzLimits(heading_deg=90.0, fov_wide_deg=50.0),
            max_range_m=250.0,
        )
    ],
    docks=[DroneDock(id="dock-1", lat=45.441, lon=4.386, connection="udpout:10.0.0.50:14550")],
)


@dataclass
class _Service:
    settings: VerifySettings


@dataclass
class _Hub:
    verification: Any


def test_no_verification_means_no_equipment() -> None:
    kit = equipment(cast(Any, _Hub(None)))
    assert kit.cameras == () and kit.docks == ()


def test_entries_come_from_the_verify_settings_without_secrets() -> None:
    kit = equipment(cast(Any, _Hub(_Service(SETTINGS))))
    assert kit.cameras == (
        CameraEntry(
            id="cam-1",
            name="cam-1",
            site="s1",
            lat=45.44,
            lon=4.387,
            heading_deg=90.0,
            fov_deg=50.0,
            range_m=250.0,
        ),
    )
    assert kit.docks == (
        DockEntry(id="dock-1", name="dock-1", site=None, lat=45.441, lon=4.386, range_m=1000.0),
    )
    dumped = kit.model_dump_json()
    assert "10.0.0" not in dumped and "ouie" not in dumped  # no address, user or link
