"""The service the hub wires in: config → cameras, drones, outputs; events → the audit log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ouie.config.verify import VerifySettings, load_verify_settings
from ouie.core.geometry import LocalFrame
from ouie.verify.credentials import SecretBox, SecretKeyError
from ouie.verify.dispatch import SupervisorApproval
from ouie.verify.events import CameraCued, EventLog, to_audit_event
from ouie.verify.incident import IncidentNotice
from ouie.verify.peers.http_receiver import HttpReceiver
from ouie.verify.service import AUTO_CUE_ACTOR, VerificationService
from tests._services import require_module
from tests.verify.conftest import ORIGIN, incident_at
from tests.verify.mavlink_vehicle import MavlinkVehicle
from tests.verify.onvif_device import OnvifPtzDevice

FRAME = LocalFrame(*ORIGIN)


def settings_dict(
    device: OnvifPtzDevice, vehicle: MavlinkVehicle, box: SecretBox, hook_url: str
) -> dict[str, Any]:
    return {
        "cueing": {"auto_cue_labels": ["gunshot"]},
        "cameras": [
            {
                "id": "cam-hdv",
                "lat": ORIGIN[0],
                "lon": ORIGIN[1],
                "height_m": 10.0,
                "onvif_url": device.base_url,
                "username": device.username,
                "password_enc": box.encrypt(device.password),
            }
        ],
        "docks": [
            {"id": "dock-1", "lat": ORIGIN[0], "lon": ORIGIN[1], "connection": vehicle.address}
        ],
        "flight_rules": {"operator_registration": "FRA-OP-1", "night_flight_allowed": True},
        "outputs": [
            {
                "type": "webhook",
                "id": "police",
                "url": hook_url + "/hook",
                "secret_enc": box.encrypt("hook-secret"),
            },
            {"type": "cap", "sender": "ouie@ville.example"},
            {"type": "vms_webhook", "id": "vms", "url": hook_url + "/vms"},
        ],
    }


def test_gunshot_incident_end_to_end(
    onvif_device: OnvifPtzDevice, vehicle: MavlinkVehicle, box: SecretBox
) -> None:
    log = EventLog()
    with HttpReceiver() as receiver:
        settings = VerifySettings.model_validate(
            settings_dict(onvif_device, vehicle, box, receiver.url)
        )
        service = VerificationService(settings, audit=log, secrets=box)
        lat, lon = FRAME.to_latlon(80.0, 120.0)
        incident = incident_at(lat, lon)

        async def go() -> None:
            await service.start()
            cue = await service.on_incident(IncidentNotice(change="created", incident=incident))
            assert cue is not None and cue.camera_id == "cam-hdv"
            plan = service.plan_drone(incident, actor="olivier")
            approved = service.approve_drone(
                SupervisorApproval(
                    user="claire",
                    role="supervisor",
                    mission_id=plan.mission_id,
                    mission_hash=plan.digest(),
                    confirmed_items=plan.declared_items,
                )
            )
            run = await service.launch_drone(approved)
            assert run.state == "in_flight", run.error
            status = service.drone_status()
            assert status[0]["mission_id"] == plan.mission_id
            assert await service.abort_drone(plan.mission_id, actor="claire") == "ACCEPTED"
            await service.outputs.drain()
            await service.close()

        asyncio.run(go())
        assert receiver.wait_for(2)
    paths = sorted(r.path for r in receiver.requests)
    assert paths == ["/hook", "/vms"]
    (cued,) = log.of(CameraCued)
    assert cued.actor == AUTO_CUE_ACTOR
    assert len(onvif_device.calls_of("AbsoluteMove")) == 1
    actions = log.actions()
    for expected in (
        "camera.cued",
        "vms.bookmark",
        "webhook.delivered",
        "alert.published",
        "drone.mission_planned",
        "drone.mission_approved",
        "drone.command",
        "drone.mission_uploaded",
        "drone.abort",
    ):
        assert expected in actions
    # Events carry no credentials.
    dumped = json.dumps([e.to_json() for e in log.events])
    assert onvif_device.password not in dumped and "hook-secret" not in dumped


def test_events_append_to_the_hubs_audit_chain(box: SecretBox) -> None:
    # The hub is an optional extra for this package: without it the test skips (fails in CI).
    require_module("ouie.hub.audit", "the hub's audit chain needs the hub extra")
    import sqlalchemy
    from sqlalchemy.orm import Session

    from ouie.hub.audit import record, verify
    from ouie.hub.db import Base

    event = CameraCued(
        actor="operator-1",
        incident_id="inc-1",
        camera_id="cam-hdv",
        method="absolute",
        pan=0.1,
        tilt=-0.2,
        zoom=0.3,
        bearing_deg=45.0,
        tilt_deg=-10.0,
        distance_m=14.1,
        command_ms=6.0,
    )
    audit_event = to_audit_event(event)
    assert audit_event.action == "camera.cued" and audit_event.object_id == "inc-1"
    assert audit_event.detail["camera_id"] == "cam-hdv"
    engine = sqlalchemy.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        record(session, audit_event)
        session.commit()
        assert verify(session).ok


def test_missing_key_is_an_error_when_secrets_are_configured(
    monkeypatch: pytest.MonkeyPatch, box: SecretBox
) -> None:
    monkeypatch.delenv("OUIE_SECRET_KEY", raising=False)
    settings = VerifySettings.model_validate(
        {
            "outputs": [
                {
                    "type": "webhook",
                    "id": "h",
                    "url": "http://127.0.0.1:9/",
                    "secret_enc": box.encrypt("x"),
                }
            ],
        }
    )
    with pytest.raises(SecretKeyError):
        VerificationService(settings)
    assert VerificationService(VerifySettings()).secrets is None


def test_cli_keygen_encrypt_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ouie.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["verify", "keygen"])
    assert result.exit_code == 0
    key = result.output.strip()
    monkeypatch.setenv("OUIE_SECRET_KEY", key)
    result = runner.invoke(app, ["verify", "encrypt"], input="camera-password\n")
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert SecretBox(key).decrypt(token).get_secret_value() == "camera-password"
    zones = tmp_path / "no-fly.geojson"
    zones.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "hospital"},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [
                                [[4.38, 45.44], [4.39, 45.44], [4.39, 45.45], [4.38, 45.44]]
                            ],
                        },
                    }
                ],
            }
        )
    )
    config = tmp_path / "verify.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "cameras": [
                    {
                        "id": "c1",
                        "lat": 45.44,
                        "lon": 4.38,
                        "height_m": 8,
                        "onvif_url": "http://127.0.0.1:1",
                        "username": "u",
                        "password_enc": token,
                    }
                ],
                "flight_rules": {"no_fly_geojson": str(zones)},
            }
        )
    )
    result = runner.invoke(app, ["verify", "check", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "1 cameras" in result.output and "1 no-fly zones" in result.output
    assert load_verify_settings(config).cameras[0].id == "c1"
    monkeypatch.setenv("OUIE_SECRET_KEY", SecretBox.generate_key())
    result = runner.invoke(app, ["verify", "check", "--config", str(config)])
    assert result.exit_code == 2 and "could not be decrypted" in result.output
    assert token not in result.output


def test_bench_verify_json(tmp_path: Path) -> None:
    from ouie.cli import app

    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "verify",
            "--cues",
            "3",
            "--missions",
            "1",
            "--webhooks",
            "3",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    for key in ("camera_cue_ms_p50", "approval_to_upload_ms_p50", "webhook_delivery_ms_p50"):
        assert figures[key] > 0.0


def test_incident_ref_from_the_hubs_row() -> None:
    require_module("ouie.hub.db", "the hub's incident rows need the hub extra")
    from ouie.hub.db import Incident

    when = incident_at(*ORIGIN).time
    row = Incident(
        id="a" * 32,
        site="saint-etienne",
        label="gunshot",
        state="new",
        created_at=when,
        updated_at=when,
        first_onset=when,
        last_onset=when,
        lat=45.44,
        lon=4.39,
        method="tdoa",
        radius_m=6.0,
        ellipse_major_m=9.0,
        ellipse_minor_m=4.0,
        sensor_count=4,
        detection_count=5,
        max_score=0.93,
    )
    from ouie.verify.incident import IncidentRef

    ref = IncidentRef.from_record(row)
    assert ref.id == "a" * 32 and ref.radius_m == 9.0 and ref.max_score == 0.93
