"""The sensor registry: list and read, add, per-label thresholds, ingest token rotation."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import Field

from ouie.core.labels import EventLabel
from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now
from ouie.hub import sensors
from ouie.hub.auth import Perm
from ouie.hub.db import Sensor
from ouie.hub.routers.deps import API_PREFIX, Caller, HubDep, access
from ouie.hub.schemas import SensorView
from ouie.hub.service import Hub

router = APIRouter(prefix=API_PREFIX, tags=["sensors"])

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class SensorBody(StrictModel):
    site: str = Field(pattern=NAME)
    sensor_id: str = Field(pattern=NAME)
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    height_m: float = Field(default=0.0, ge=-500.0, le=9000.0)
    mounting_height_m: float = Field(default=4.0, ge=0.0, le=200.0)
    mounting: str = Field(default="", max_length=200)
    calibration_db: float | None = Field(default=None, ge=0.0, le=200.0)
    name: str = Field(default="", max_length=200)
    signing_key: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9+/]{43}=$",
        description="base64 Ed25519 public key (32 bytes) its messages must be signed with; "
        "`ouie sensor add` issues one with the sensor's certificate",
    )


class ThresholdsBody(StrictModel):
    thresholds: dict[EventLabel, Annotated[float, Field(gt=0.0, lt=1.0)]]


class SensorList(StrictModel):
    sensors: list[SensorView]


class SensorAdded(StrictModel):
    sensor: SensorView
    token: str = Field(description="the sensor's HTTP ingest token, shown once")


class ThresholdsSet(StrictModel):
    site: str
    sensor_id: str
    thresholds: dict[str, float]


class SensorToken(StrictModel):
    token: str = Field(description="the new ingest token, shown once; the old one stops")


def _view(hub: Hub, sensor: Sensor) -> SensorView:
    return SensorView.of(sensor, hub.settings.ingest.stale_after_s, utc_now())


@router.get("/sensors", response_model=SensorList, **access(Perm.SENSORS_READ))
def list_sensors(hub: HubDep) -> SensorList:
    with hub.sessions() as session:
        return SensorList(sensors=[_view(hub, s) for s in sensors.all_sensors(session)])


@router.get("/sensors/{site}/{sensor_id}", response_model=SensorView, **access(Perm.SENSORS_READ))
def get_sensor(site: str, sensor_id: str, hub: HubDep) -> SensorView:
    with hub.sessions() as session:
        sensor = sensors.find(session, site, sensor_id)
        if sensor is None:
            raise HTTPException(404, "no such sensor")
        return _view(hub, sensor)


@router.post("/sensors", status_code=201, response_model=SensorAdded, **access(Perm.SENSORS_ADMIN))
def add_sensor(body: SensorBody, hub: HubDep, who: Caller) -> SensorAdded:
    try:
        with hub.sessions() as session, session.begin():
            sensor, token = sensors.add_sensor(
                session, actor=who.username, now=utc_now(), **body.model_dump()
            )
            added = SensorAdded(sensor=_view(hub, sensor), token=token)
    except sensors.SensorError as exc:
        raise HTTPException(409, str(exc)) from exc
    hub.reload_sensors()
    return added


@router.put(
    "/sensors/{site}/{sensor_id}/thresholds",
    response_model=ThresholdsSet,
    **access(Perm.SENSORS_CONFIGURE),
)
async def put_thresholds(
    site: str, sensor_id: str, body: ThresholdsBody, hub: HubDep, who: Caller
) -> ThresholdsSet:
    def write() -> dict[str, float]:
        with hub.sessions() as session, session.begin():
            sensor = sensors.find(session, site, sensor_id)
            if sensor is None:
                raise HTTPException(404, "no such sensor")
            return sensors.set_thresholds(
                session,
                sensor,
                {k.value: v for k, v in body.thresholds.items()},
                who.username,
                utc_now(),
            )

    clean = await asyncio.to_thread(write)  # the database is synchronous
    await hub.publish_thresholds(site, sensor_id, clean)
    return ThresholdsSet(site=site, sensor_id=sensor_id, thresholds=clean)


@router.post(
    "/sensors/{site}/{sensor_id}/token", response_model=SensorToken, **access(Perm.SENSORS_ADMIN)
)
def rotate_sensor_token(site: str, sensor_id: str, hub: HubDep, who: Caller) -> SensorToken:
    with hub.sessions() as session, session.begin():
        sensor = sensors.find(session, site, sensor_id)
        if sensor is None:
            raise HTTPException(404, "no such sensor")
        token = sensors.rotate_token(session, sensor, who.username, utc_now())
    hub.reload_sensors()
    return SensorToken(token=token)
