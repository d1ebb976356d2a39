"""Camera pointing: bearing/tilt → ONVIF generic pan/tilt, zoom, ranking."""

from __future__ import annotations

import math

import pytest

from ouie.config.cameras import CameraPreset, OnvifPtzCamera, PtzLimits
from ouie.core.geometry import LocalFrame
from ouie.verify.cctv import point_camera, rank_cameras, strip_userinfo, zoom_for
from tests.verify.conftest import ORIGIN, incident_at

FRAME = LocalFrame(*ORIGIN)


def camera(**changes: object) -> OnvifPtzCamera:
    base: dict[str, object] = {
        "id": "cam-1",
        "lat": ORIGIN[0],
        "lon": ORIGIN[1],
        "height_m": 10.0,
        "onvif_url": "http://127.0.0.1:8000",
    }
    base.update(changes)
    return OnvifPtzCamera.model_validate(base)


def point_at(east: float, north: float) -> tuple[float, float]:
    return FRAME.to_latlon(east, north)


def test_target_due_east_with_default_limits() -> None:
    lat, lon = point_at(100.0, 0.0)
    p = point_camera(camera(), lat, lon)
    tilt_deg = math.degrees(math.atan2(1.0 - 10.0, 100.0))  # aim 1 m above ground
    assert p.bearing_deg == pytest.approx(90.0, abs=1e-6)
    assert p.distance_m == pytest.approx(100.0, abs=1e-6)
    assert p.tilt_deg == pytest.approx(tilt_deg, abs=1e-9)
    assert p.pan == pytest.approx(0.5, abs=1e-8)  # 90° of [-180, 180]
    assert p.tilt == pytest.approx(-1.0 + 2.0 * (tilt_deg + 90.0) / 120.0, abs=1e-9)


def test_heading_direction_and_wrap() -> None:
    lat, lon = point_at(0.0, -50.0)  # due south, bearing 180
    limits = PtzLimits(heading_deg=135.0)
    assert point_camera(camera(ptz=limits), lat, lon).pan == pytest.approx(45.0 / 180.0)
    ccw = PtzLimits(heading_deg=135.0, pan_clockwise=False)
    assert point_camera(camera(ptz=ccw), lat, lon).pan == pytest.approx(-45.0 / 180.0)
    # A 0..360° camera: bearing 270 with heading 0 is pan 270° → x = 0.5.
    lat, lon = point_at(-80.0, 0.0)
    full = PtzLimits(pan_min_deg=0.0, pan_max_deg=360.0)
    assert point_camera(camera(ptz=full), lat, lon).pan == pytest.approx(0.5, abs=1e-8)


def test_pan_and_tilt_limits() -> None:
    wall = PtzLimits(heading_deg=0.0, pan_min_deg=-90.0, pan_max_deg=90.0)
    behind = point_at(0.0, -40.0)
    p = point_camera(camera(ptz=wall), *behind)
    assert p.pan is None and not p.reachable
    # Tilt range 0..90 counted downwards (tilt_up_positive false).
    down = PtzLimits(tilt_min_deg=0.0, tilt_max_deg=90.0, tilt_up_positive=False)
    lat, lon = point_at(30.0, 0.0)
    p = point_camera(camera(ptz=down), lat, lon)
    depression = -math.degrees(math.atan2(-9.0, 30.0))
    assert p.tilt == pytest.approx(-1.0 + 2.0 * depression / 90.0, abs=1e-9)
    # A shallow tilt range cannot see the foot of the pole.
    shallow = PtzLimits(tilt_min_deg=-30.0, tilt_max_deg=10.0)
    lat, lon = point_at(3.0, 0.0)
    assert point_camera(camera(ptz=shallow), lat, lon).tilt is None


def test_zoom_frames_the_uncertainty() -> None:
    limits = PtzLimits(fov_wide_deg=60.0, fov_tele_deg=3.0)
    assert zoom_for(limits, 10.0, 20.0) == 0.0  # wider than the wide end
    near, far = zoom_for(limits, 100.0, 20.0), zoom_for(limits, 300.0, 20.0)
    assert 0.0 < near < far < 1.0
    # Focal-linear: the wanted fov at the computed zoom is the frame width.
    z = zoom_for(limits, 200.0, 20.0)
    inv = (1 - z) / math.tan(math.radians(30.0)) + z / math.tan(math.radians(1.5))
    assert 2 * 200.0 / inv == pytest.approx(20.0, rel=1e-6)


def test_ranking_prefers_usable_then_near() -> None:
    lat, lon = point_at(0.0, 120.0)  # 120 m north of the origin
    near_blind = camera(
        id="near-blind", ptz=PtzLimits(heading_deg=180.0, pan_min_deg=-60.0, pan_max_deg=60.0)
    )
    far_lat, far_lon = point_at(0.0, -150.0)
    far_ok = camera(id="far-ok", lat=far_lat, lon=far_lon)
    too_far_lat, too_far_lon = point_at(500.0, 500.0)
    too_far = camera(id="too-far", lat=too_far_lat, lon=too_far_lon)
    other_site = camera(id="other-site", site="lyon")
    ranked = rank_cameras(
        [too_far, near_blind, far_ok, other_site], incident_at(lat, lon, site="saint-etienne")
    )
    assert [c.camera_id for c in ranked] == ["far-ok", "near-blind", "too-far"]
    assert ranked[0].usable and not ranked[1].usable and not ranked[2].usable
    assert "pan limits" in ranked[1].reasons[0]
    assert "beyond" in ranked[2].reasons[0]


def test_nearest_preset_in_candidate() -> None:
    lat, lon = point_at(0.0, 50.0)
    p_lat, p_lon = point_at(5.0, 52.0)
    cam = camera(presets=[CameraPreset(token="3", name="door", lat=p_lat, lon=p_lon)])
    (candidate,) = rank_cameras([cam], incident_at(lat, lon))
    assert candidate.nearest_preset is not None
    assert candidate.nearest_preset.token == "3"
    assert candidate.nearest_preset.distance_m == pytest.approx(math.hypot(5.0, 2.0), abs=0.01)
    assert candidate.to_json()["nearest_preset"]["token"] == "3"


def test_media_uris_lose_embedded_credentials() -> None:
    assert strip_userinfo("rtsp://admin:pw@10.0.0.5:554/s1") == "rtsp://10.0.0.5:554/s1"
    assert strip_userinfo("http://u@[::1]/snap.jpg") == "http://[::1]/snap.jpg"
    assert strip_userinfo("http://10.0.0.5/snap.jpg") == "http://10.0.0.5/snap.jpg"
    assert strip_userinfo(None) is None


def test_camera_config_refuses_credentials_in_url() -> None:
    with pytest.raises(ValueError, match="credentials"):
        camera(onvif_url="http://admin:pw@10.0.0.1")
    with pytest.raises(ValueError, match="pan_max_deg"):
        PtzLimits(pan_min_deg=10.0, pan_max_deg=-10.0)
