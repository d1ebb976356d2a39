"""Fixtures of the verification tests: keys, the ONVIF device, the MAVLink vehicle."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from ouie.core.labels import EventLabel
from ouie.verify.credentials import SecretBox
from ouie.verify.incident import IncidentRef
from tests.verify.mavlink_vehicle import MavlinkVehicle
from tests.verify.onvif_device import DevicePreset, OnvifPtzDevice

#: Place de l'Hôtel de Ville, Saint-Étienne (the demo site).
ORIGIN = (45.4397, 4.3872)


def incident_at(
    lat: float,
    lon: float,
    *,
    id: str = "inc-1",
    label: EventLabel = EventLabel.GUNSHOT,
    radius_m: float = 5.0,
    when: datetime | None = None,
    site: str = "saint-etienne",
    sensor_count: int = 4,
) -> IncidentRef:
    return IncidentRef(
        id=id,
        site=site,
        label=label,
        lat=lat,
        lon=lon,
        radius_m=radius_m,
        time=when or datetime(2026, 6, 21, 12, 0, tzinfo=UTC),
        sensor_count=sensor_count,
    )


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(SecretBox.generate_key())


@pytest.fixture
def onvif_device() -> Iterator[OnvifPtzDevice]:
    with OnvifPtzDevice(
        username="ouie",
        password="s3cret-PTZ!",
        presets=[DevicePreset("7", "fountain", 0.25, -0.4, 0.2)],
    ) as device:
        yield device


@pytest.fixture
def vehicle() -> Iterator[MavlinkVehicle]:
    with MavlinkVehicle(ORIGIN, time_scale=30.0, heartbeat_s=0.1, climb_m_s=5.0) as sim:
        yield sim
