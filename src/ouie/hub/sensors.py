"""Sensor registry changes (API and CLI): add, thresholds, token rotation; all audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ouie.core.labels import EventLabel
from ouie.hub import audit
from ouie.hub.db import Sensor
from ouie.hub.registry import hash_token, new_token
from ouie.transport.signing import SigningKeyError, VerifyKey


class SensorError(ValueError):
    pass


def all_sensors(session: Session) -> list[Sensor]:
    """Every registered sensor, by site and id (API and console lists)."""
    return list(session.execute(select(Sensor).order_by(Sensor.site, Sensor.sensor_id)).scalars())


def find(session: Session, site: str, sensor_id: str) -> Sensor | None:
    return session.execute(
        select(Sensor).where(Sensor.site == site, Sensor.sensor_id == sensor_id)
    ).scalar_one_or_none()


def add_sensor(
    session: Session,
    *,
    site: str,
    sensor_id: str,
    lat: float,
    lon: float,
    height_m: float = 0.0,
    mounting_height_m: float = 4.0,
    mounting: str = "",
    calibration_db: float | None = None,
    name: str = "",
    signing_key: str | None = None,
    cert_fingerprint: str | None = None,
    actor: str,
    now: datetime,
) -> tuple[Sensor, str]:
    """Register a sensor; returns it and its new HTTP ingest token (shown once).

    ``signing_key``: base64 Ed25519 public key its messages must then be signed with
    (``ouie sensor add`` issues it with the client certificate, ``cert_fingerprint``)."""
    if find(session, site, sensor_id) is not None:
        raise SensorError(f"sensor {site}/{sensor_id} exists")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise SensorError("lat/lon out of range")
    token = new_token("ouies")
    sensor = Sensor(
        site=site,
        sensor_id=sensor_id,
        name=name,
        lat=lat,
        lon=lon,
        height_m=height_m,
        mounting_height_m=mounting_height_m,
        mounting=mounting,
        calibration_db=calibration_db,
        thresholds={},
        token_hash=hash_token(token),
        health="unknown",
        created_at=now,
        signing_key=_checked_key(signing_key),
        cert_fingerprint=cert_fingerprint,
    )
    session.add(sensor)
    session.flush()
    audit.record(
        session,
        audit.AuditEvent(
            actor=actor,
            action="sensor.added",
            object_type="sensor",
            object_id=f"{site}/{sensor_id}",
            detail={
                "lat": lat,
                "lon": lon,
                "height_m": height_m,
                "signing_key": signing_key,
                "cert_fingerprint": cert_fingerprint,
            },
        ),
        at=now,
    )
    return sensor, token


def _checked_key(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return VerifyKey.from_text(text).text
    except SigningKeyError as exc:
        raise SensorError(str(exc)) from exc


def set_identity(
    session: Session,
    sensor: Sensor,
    *,
    signing_key: str,
    cert_fingerprint: str | None,
    actor: str,
    now: datetime,
) -> None:
    """A new signing key (and certificate) for a sensor: messages signed with the old key
    are refused from now on. The replay marks start afresh, since a re-keyed sensor is
    usually a replaced node whose sequence counter restarts."""
    previous = sensor.signing_key
    sensor.signing_key = _checked_key(signing_key)
    sensor.cert_fingerprint = cert_fingerprint
    sensor.last_sequence = None
    sensor.sequence_seen = None
    sensor.last_status_at = None
    audit.record(
        session,
        audit.AuditEvent(
            actor=actor,
            action="sensor.identity_issued",
            object_type="sensor",
            object_id=f"{sensor.site}/{sensor.sensor_id}",
            detail={
                "signing_key": sensor.signing_key,
                "previous_key": previous,
                "cert_fingerprint": cert_fingerprint,
            },
        ),
        at=now,
    )


def set_thresholds(
    session: Session, sensor: Sensor, thresholds: dict[str, float], actor: str, now: datetime
) -> dict[str, float]:
    clean: dict[str, float] = {}
    for label, value in thresholds.items():
        if label not in EventLabel._value2member_map_:
            raise SensorError(f"unknown label {label!r}")
        if not 0.0 < value < 1.0:
            raise SensorError(f"threshold for {label} must be between 0 and 1")
        clean[label] = float(value)
    previous: dict[str, Any] = dict(sensor.thresholds or {})
    sensor.thresholds = clean
    audit.record(
        session,
        audit.AuditEvent(
            actor=actor,
            action="sensor.thresholds",
            object_type="sensor",
            object_id=f"{sensor.site}/{sensor.sensor_id}",
            detail={"from": previous, "to": clean},
        ),
        at=now,
    )
    return clean


def rotate_token(session: Session, sensor: Sensor, actor: str, now: datetime) -> str:
    token = new_token("ouies")
    sensor.token_hash = hash_token(token)
    audit.record(
        session,
        audit.AuditEvent(
            actor=actor,
            action="sensor.token_rotated",
            object_type="sensor",
            object_id=f"{sensor.site}/{sensor.sensor_id}",
        ),
        at=now,
    )
    return token
