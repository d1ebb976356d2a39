"""Camera cueing over real SOAP: onvif-zeep-async against the loopback ONVIF PTZ device."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import math
import os
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from ouie.config.cameras import CameraPreset, OnvifPtzCamera, PtzLimits
from ouie.core.geometry import LocalFrame
from ouie.verify.cctv import CameraCuer, CueError
from ouie.verify.credentials import SecretBox
from ouie.verify.events import CameraCued, CameraCueFailed, EventLog
from tests.verify.conftest import ORIGIN, incident_at
from tests.verify.onvif_device import PAN_TILT_SPACE, PROFILE_TOKEN, OnvifPtzDevice

FRAME = LocalFrame(*ORIGIN)


def make_camera(device: OnvifPtzDevice, box: SecretBox, **changes: object) -> OnvifPtzCamera:
    preset_lat, preset_lon = FRAME.to_latlon(-60.0, 60.0)
    base: dict[str, object] = {
        "id": "cam-hdv",
        "lat": ORIGIN[0],
        "lon": ORIGIN[1],
        "height_m": 12.0,
        "onvif_url": device.base_url,
        "username": device.username,
        "password_enc": box.encrypt(device.password),
        "ptz": PtzLimits(heading_deg=30.0, tilt_min_deg=-90.0, tilt_max_deg=30.0),
        "presets": [CameraPreset(token="7", name="fountain", lat=preset_lat, lon=preset_lon)],
    }
    base.update(changes)
    return OnvifPtzCamera.model_validate(base)


def test_absolute_move_requests_the_exact_pan_and_tilt(
    onvif_device: OnvifPtzDevice, box: SecretBox
) -> None:
    # Incident 150 m east, 80 m north: bearing atan2(150, 80), heading 30°.
    lat, lon = FRAME.to_latlon(150.0, 80.0)
    log = EventLog()
    cuer = CameraCuer([make_camera(onvif_device, box)], box, log)

    async def go() -> None:
        result = await cuer.cue(incident_at(lat, lon, radius_m=12.0), actor="operator-1")
        await cuer.close()
        assert result.method == "absolute"
        assert result.snapshot_uri == f"{onvif_device.base_url}/snapshot.jpg"
        assert result.stream_uri == f"rtsp://127.0.0.1:8554/{PROFILE_TOKEN}"

    asyncio.run(go())
    bearing = math.degrees(math.atan2(150.0, 80.0))
    distance = math.hypot(150.0, 80.0)
    expected_pan = (bearing - 30.0) / 180.0
    tilt_deg = math.degrees(math.atan2(1.0 - 12.0, distance))
    expected_tilt = -1.0 + 2.0 * (tilt_deg + 90.0) / 120.0
    (move,) = onvif_device.calls_of("AbsoluteMove")
    assert move.authenticated and move.username == "ouie"
    assert move.args["ProfileToken"] == PROFILE_TOKEN
    assert move.args["PanTilt"]["space"] == PAN_TILT_SPACE
    assert move.args["PanTilt"]["x"] == pytest.approx(expected_pan, abs=1e-6)
    assert move.args["PanTilt"]["y"] == pytest.approx(expected_tilt, abs=1e-6)
    assert 0.0 < move.args["Zoom"]["x"] < 1.0
    assert onvif_device.position()[:2] == pytest.approx((expected_pan, expected_tilt), abs=1e-6)
    (cued,) = log.of(CameraCued)
    assert isinstance(cued, CameraCued)
    assert cued.actor == "operator-1" and cued.method == "absolute"
    assert cued.pan == pytest.approx(expected_pan, abs=1e-9)
    assert cued.command_ms > 0.0
    # The calls a cue makes, in order, after the session set-up.
    ops = [c.operation for c in onvif_device.calls]
    assert ops[0] == "GetServices" and "GetProfiles" in ops
    assert ops[-3:] == ["AbsoluteMove", "GetSnapshotUri", "GetStreamUri"]


def test_goto_preset_when_a_preset_looks_at_the_incident(
    onvif_device: OnvifPtzDevice, box: SecretBox
) -> None:
    lat, lon = FRAME.to_latlon(-55.0, 62.0)  # 5.4 m from the preset's ground point
    cuer = CameraCuer([make_camera(onvif_device, box)], box)

    async def go() -> None:
        result = await cuer.cue(incident_at(lat, lon), actor="operator-1", wait_settled_s=2.0)
        await cuer.close()
        assert result.method == "preset" and result.preset_token == "7"
        assert result.settled_ms is not None and result.settled_ms >= result.command_ms

    asyncio.run(go())
    (goto,) = onvif_device.calls_of("GotoPreset")
    assert goto.args == {"ProfileToken": PROFILE_TOKEN, "PresetToken": "7"}
    assert onvif_device.position() == pytest.approx((0.25, -0.4, 0.2))
    assert not onvif_device.calls_of("AbsoluteMove")


def test_settling_waits_for_the_slew(box: SecretBox) -> None:
    with OnvifPtzDevice(move_time_s=0.3) as device:
        lat, lon = FRAME.to_latlon(0.0, 100.0)
        cuer = CameraCuer([make_camera(device, box, presets=[])], box)

        async def go() -> None:
            await cuer.cue(incident_at(lat, lon), actor="op")  # warm the session
            lat2, lon2 = FRAME.to_latlon(100.0, -20.0)
            result = await cuer.cue(incident_at(lat2, lon2), actor="op", wait_settled_s=3.0)
            await cuer.close()
            assert result.settled_ms is not None
            assert result.settled_ms - result.command_ms >= 250.0

        asyncio.run(go())
        assert len(device.calls_of("GetStatus")) >= 2


def test_wrong_password_is_refused_and_audited(
    onvif_device: OnvifPtzDevice, box: SecretBox, caplog: pytest.LogCaptureFixture
) -> None:
    camera = make_camera(onvif_device, box, password_enc=box.encrypt("not-the-password"))
    log = EventLog()
    cuer = CameraCuer([camera], box, log)
    lat, lon = FRAME.to_latlon(50.0, 50.0)
    caplog.set_level(logging.DEBUG)

    async def go() -> None:
        with pytest.raises(CueError, match="cam-hdv"):
            await cuer.cue(incident_at(lat, lon), actor="operator-1")
        await cuer.close()

    asyncio.run(go())
    assert onvif_device.auth_failures >= 1
    assert not onvif_device.calls_of("AbsoluteMove")
    (failed,) = log.of(CameraCueFailed)
    assert isinstance(failed, CameraCueFailed)
    for text in (caplog.text, failed.model_dump_json(), repr(cuer.client("cam-hdv"))):
        assert "not-the-password" not in text and onvif_device.password not in text


def test_no_usable_camera(onvif_device: OnvifPtzDevice, box: SecretBox) -> None:
    camera = make_camera(onvif_device, box, max_range_m=50.0)
    lat, lon = FRAME.to_latlon(400.0, 0.0)
    cuer = CameraCuer([camera], box)
    with pytest.raises(CueError, match="no camera"):
        asyncio.run(cuer.cue(incident_at(lat, lon), actor="op"))


def _soap(username: str, password: str, nonce: bytes, created: str) -> bytes:
    digest = base64.b64encode(
        hashlib.sha1(nonce + created.encode() + password.encode()).digest()
    ).decode()
    return f"""<?xml version="1.0"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
 xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">
<s:Header><wsse:Security><wsse:UsernameToken><wsse:Username>{username}</wsse:Username>
<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{digest}</wsse:Password>
<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{created}</wsu:Created>
</wsse:UsernameToken></wsse:Security></s:Header>
<s:Body><GetStatus xmlns="http://www.onvif.org/ver20/ptz/wsdl"><ProfileToken>profile_1</ProfileToken></GetStatus></s:Body>
</s:Envelope>""".encode()


def _post(device: OnvifPtzDevice, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{device.base_url}/onvif/ptz_service",
        data=body,
        headers={"Content-Type": "application/soap+xml"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_device_digest_auth_rules(onvif_device: OnvifPtzDevice) -> None:
    nonce = os.urandom(16)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, text = _post(onvif_device, _soap("ouie", onvif_device.password, nonce, now))
    assert status == 200 and "IDLE" in text
    status, text = _post(onvif_device, _soap("ouie", onvif_device.password, nonce, now))
    assert status == 400 and "NotAuthorized" in text and "replayed" in text
    old = "2020-01-01T00:00:00Z"
    status, text = _post(onvif_device, _soap("ouie", onvif_device.password, os.urandom(16), old))
    assert status == 400 and "clock skew" in text
    status, text = _post(onvif_device, _soap("ouie", "guess", os.urandom(16), now))
    assert status == 400 and "NotAuthorized" in text
