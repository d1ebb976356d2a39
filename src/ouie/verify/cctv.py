"""CCTV cueing (plugin ``onvif_ptz``): point the best PTZ camera at an incident over ONVIF.

Registry
    Each camera: position (WGS84) and lens height above ground, ONVIF endpoint, user name
    and a Fernet-encrypted password (``ouie.verify.credentials``), PTZ limits, the maximum
    useful range and named presets with the ground point each one looks at.

Ranking (``rank_cameras``)
    For an incident: horizontal distance and bearing from each camera; a camera is usable
    when the point is within ``max_range_m``, its bearing maps into the pan range and the
    depression angle into the tilt range. Usable cameras come first, nearest first.

Pointing (``point_camera``), the normalisation to ONVIF's generic position space
    bearing β  = azimuth camera → incident, degrees clockwise from true north;
    heading h  = azimuth the camera looks at when its pan angle is 0 (``ptz.heading_deg``);
    pan angle  p = wrap(β − h) into (−180, 180] (negated when ``pan_clockwise`` is false),
                 moved by ±360° if needed to fall inside [pan_min_deg, pan_max_deg];
    tilt angle τ = atan2(aim_height − lens_height, distance), negative below the horizon
                 (negated when ``tilt_up_positive`` is false);
    generic    x = −1 + 2 (p − pan_min_deg) / (pan_max_deg − pan_min_deg),
               y = −1 + 2 (τ − tilt_min_deg) / (tilt_max_deg − tilt_min_deg),
    i.e. ONVIF's ``PositionGenericSpace`` [−1, 1] spread linearly over the configured
    mechanical ranges. Zoom: the frame should be ``max(min_frame_width_m, 2.4 × radius)``
    wide at the slant range; assuming the generic zoom [0, 1] is linear in focal length,
    z = (1/tan(φ/2) − 1/tan(φw/2)) / (1/tan(φt/2) − 1/tan(φw/2)) for the wanted horizontal
    field of view φ between the wide (φw) and tele (φt) ends, clamped to [0, 1].

Cue (``CameraCuer.cue``)
    ``cue_mode: auto`` uses ``GotoPreset`` when a preset's ground point is within
    ``preset_match_m`` of the incident (presets are framed by people, so they are better
    than computed angles) and ``AbsoluteMove`` otherwise; then ``GetSnapshotUri`` and
    ``GetStreamUri`` for the console. Optionally waits for ``GetStatus`` to report IDLE.
    Every cue is reported as ``CameraCued`` (or ``CameraCueFailed``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr

from ouie.config.cameras import OnvifPtzCamera, PtzLimits
from ouie.core.geometry import bearing_distance, wrap180
from ouie.core.model_base import StrictModel
from ouie.verify.credentials import SecretBox
from ouie.verify.events import (
    AuditSink,
    CameraCued,
    CameraCueFailed,
    discard,
)
from ouie.verify.incident import IncidentRef

if TYPE_CHECKING:
    from onvif import ONVIFCamera, ONVIFService

log = logging.getLogger(__name__)

PAN_TILT_GENERIC_SPACE = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
ZOOM_GENERIC_SPACE = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"
# -- geometry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pointing:
    """Where a camera must look for an incident, and the generic-space request."""

    bearing_deg: float
    distance_m: float
    tilt_deg: float
    pan_deg: float | None  # camera pan angle, None when outside the pan range
    pan: float | None  # generic x
    tilt: float | None  # generic y, None when outside the tilt range
    zoom: float

    @property
    def reachable(self) -> bool:
        return self.pan is not None and self.tilt is not None


def _to_generic(value: float, lo: float, hi: float) -> float:
    return max(-1.0, min(1.0, -1.0 + 2.0 * (value - lo) / (hi - lo)))


def zoom_for(limits: PtzLimits, slant_m: float, frame_width_m: float) -> float:
    """Generic zoom [0, 1] framing ``frame_width_m`` at ``slant_m`` (focal-linear model)."""
    wanted = 2.0 * math.degrees(math.atan2(frame_width_m / 2.0, max(slant_m, 0.1)))

    def inv_tan(fov: float) -> float:
        return 1.0 / math.tan(math.radians(fov) / 2.0)

    wide, tele = inv_tan(limits.fov_wide_deg), inv_tan(limits.fov_tele_deg)
    if tele <= wide:
        return 0.0
    return max(0.0, min(1.0, (inv_tan(min(wanted, 179.0)) - wide) / (tele - wide)))


def frame_width(camera: OnvifPtzCamera, radius_m: float) -> float:
    """The width to frame: the 95 % circle (or the approximate area) with some margin."""
    return max(camera.min_frame_width_m, 2.4 * radius_m)


def point_camera(camera: OnvifPtzCamera, lat: float, lon: float, radius_m: float = 0.0) -> Pointing:
    """Bearing, depression and the generic pan/tilt/zoom that aim ``camera`` at a point."""
    limits = camera.ptz
    bearing, distance = bearing_distance(camera.lat, camera.lon, lat, lon)
    tilt_deg = math.degrees(math.atan2(camera.aim_height_m - camera.height_m, distance))
    rel = wrap180(bearing - limits.heading_deg)
    pan_angle = rel if limits.pan_clockwise else -rel
    pan_deg: float | None = None
    for candidate in (pan_angle, pan_angle - 360.0, pan_angle + 360.0):
        if limits.pan_min_deg - 1e-9 <= candidate <= limits.pan_max_deg + 1e-9:
            pan_deg = candidate
            break
    tilt_angle = tilt_deg if limits.tilt_up_positive else -tilt_deg
    tilt_ok = limits.tilt_min_deg - 1e-9 <= tilt_angle <= limits.tilt_max_deg + 1e-9
    slant = math.hypot(distance, camera.height_m - camera.aim_height_m)
    frame = frame_width(camera, radius_m)
    return Pointing(
        bearing_deg=bearing,
        distance_m=distance,
        tilt_deg=tilt_deg,
        pan_deg=pan_deg,
        pan=None
        if pan_deg is None
        else _to_generic(pan_deg, limits.pan_min_deg, limits.pan_max_deg),
        tilt=(
            _to_generic(tilt_angle, limits.tilt_min_deg, limits.tilt_max_deg) if tilt_ok else None
        ),
        zoom=zoom_for(limits, slant, frame),
    )


@dataclass(frozen=True)
class PresetMatch:
    token: str
    name: str
    distance_m: float  # preset ground point → incident


@dataclass(frozen=True)
class CameraCandidate:
    """One camera's suitability for an incident, as the console lists it."""

    camera_id: str
    name: str
    distance_m: float
    bearing_deg: float
    in_range: bool
    within_pan: bool
    within_tilt: bool
    nearest_preset: PresetMatch | None
    pointing: Pointing
    reasons: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.in_range and self.within_pan and self.within_tilt

    def to_json(self) -> dict[str, Any]:
        return {
            "camera_id": self.camera_id,
            "name": self.name,
            "distance_m": round(self.distance_m, 1),
            "bearing_deg": round(self.bearing_deg, 1),
            "usable": self.usable,
            "in_range": self.in_range,
            "within_pan": self.within_pan,
            "within_tilt": self.within_tilt,
            "nearest_preset": None
            if self.nearest_preset is None
            else {
                "token": self.nearest_preset.token,
                "name": self.nearest_preset.name,
                "distance_m": round(self.nearest_preset.distance_m, 1),
            },
            "reasons": self.reasons,
        }


def nearest_preset(camera: OnvifPtzCamera, lat: float, lon: float) -> PresetMatch | None:
    best: PresetMatch | None = None
    for preset in camera.presets:
        _, d = bearing_distance(lat, lon, preset.lat, preset.lon)
        if best is None or d < best.distance_m:
            best = PresetMatch(preset.token, preset.name, d)
    return best


def assess(camera: OnvifPtzCamera, incident: IncidentRef) -> CameraCandidate:
    pointing = point_camera(camera, incident.lat, incident.lon, incident.radius_m)
    reasons: list[str] = []
    in_range = pointing.distance_m <= camera.max_range_m
    if not in_range:
        reasons.append(f"{pointing.distance_m:.0f} m away, beyond {camera.max_range_m:.0f} m")
    if pointing.pan is None:
        reasons.append(f"bearing {pointing.bearing_deg:.0f}° is outside the pan limits")
    if pointing.tilt is None:
        reasons.append(f"depression {-pointing.tilt_deg:.0f}° is outside the tilt limits")
    return CameraCandidate(
        camera_id=camera.id,
        name=camera.name or camera.id,
        distance_m=pointing.distance_m,
        bearing_deg=pointing.bearing_deg,
        in_range=in_range,
        within_pan=pointing.pan is not None,
        within_tilt=pointing.tilt is not None,
        nearest_preset=nearest_preset(camera, incident.lat, incident.lon),
        pointing=pointing,
        reasons=reasons,
    )


def rank_cameras(cameras: list[OnvifPtzCamera], incident: IncidentRef) -> list[CameraCandidate]:
    """Cameras of the incident's site (or of no site): usable first, then nearest first."""
    pool = [c for c in cameras if c.site is None or c.site == incident.site]
    ranked = [assess(c, incident) for c in pool]
    ranked.sort(key=lambda c: (not c.usable, c.distance_m))
    return ranked


# -- ONVIF client -------------------------------------------------------------------------


def strip_userinfo(uri: str | None) -> str | None:
    """``uri`` without ``user:password@`` (some cameras embed credentials in media URIs;
    they must not reach the console or the audit log)."""
    if uri is None:
        return None
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return parts._replace(netloc=netloc).geturl()


class CueError(RuntimeError):
    """A camera could not be cued. The message names the camera, never credentials."""


@dataclass(frozen=True)
class PtzStatus:
    pan: float | None
    tilt: float | None
    zoom: float | None
    moving: bool


def _onvif_camera_class() -> type[ONVIFCamera]:
    """``onvif.ONVIFCamera``, imported without the root-logger setup onvif does at import.

    ``onvif.client`` calls ``logging.basicConfig(level=INFO)`` when imported, which would
    turn on INFO logs of every library in the hub; the previous state is restored."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onvif import ONVIFCamera

    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    camera_class: type[ONVIFCamera] = ONVIFCamera
    return camera_class


class OnvifPtzClient:
    """One camera's ONVIF session (device → media + PTZ services), kept open between cues."""

    def __init__(self, camera: OnvifPtzCamera, password: SecretStr | None) -> None:
        self.camera = camera
        self._password = password
        self._device: ONVIFCamera | None = None
        self._media: ONVIFService | None = None
        self._ptz: ONVIFService | None = None
        self.profile_token: str | None = camera.profile_token
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"OnvifPtzClient({self.camera.id!r}, {self.camera.onvif_url!r})"

    async def connect(self) -> None:
        """GetServices (or GetCapabilities) for the service addresses, then GetProfiles."""
        async with self._lock:
            if self._ptz is not None:
                return
            ONVIFCamera = _onvif_camera_class()
            parts = urlsplit(self.camera.onvif_url)
            host = parts.hostname or ""
            if parts.scheme == "https":
                host = f"https://{host}"
            port = parts.port or (443 if parts.scheme == "https" else 80)
            device = ONVIFCamera(
                host,
                port,
                self.camera.username,
                None if self._password is None else self._password.get_secret_value(),
                no_cache=True,
            )
            try:
                await asyncio.wait_for(device.update_xaddrs(), self.camera.timeout_s)
                media = await device.create_media_service()
                ptz = await device.create_ptz_service()
                if self.profile_token is None:
                    profiles = await asyncio.wait_for(media.GetProfiles(), self.camera.timeout_s)
                    with_ptz = [p for p in profiles if getattr(p, "PTZConfiguration", None)]
                    if not with_ptz:
                        raise CueError(f"camera {self.camera.id} has no media profile with PTZ")
                    self.profile_token = str(with_ptz[0].token)
            except BaseException:
                await device.close()
                raise
            self._device, self._media, self._ptz = device, media, ptz

    async def _call(self, service: ONVIFService | None, op: str, params: dict[str, Any]) -> Any:
        if service is None:
            raise CueError(f"camera {self.camera.id} is not connected")
        return await asyncio.wait_for(getattr(service, op)(params), self.camera.timeout_s)

    async def goto_preset(self, token: str) -> None:
        await self._call(
            self._ptz, "GotoPreset", {"ProfileToken": self.profile_token, "PresetToken": token}
        )

    async def absolute_move(self, pan: float, tilt: float, zoom: float | None) -> None:
        position: dict[str, Any] = {
            "PanTilt": {"x": pan, "y": tilt, "space": PAN_TILT_GENERIC_SPACE}
        }
        if zoom is not None:
            position["Zoom"] = {"x": zoom, "space": ZOOM_GENERIC_SPACE}
        await self._call(
            self._ptz, "AbsoluteMove", {"ProfileToken": self.profile_token, "Position": position}
        )

    async def presets(self) -> list[tuple[str, str]]:
        result = await self._call(self._ptz, "GetPresets", {"ProfileToken": self.profile_token})
        return [(str(p.token), str(getattr(p, "Name", "") or "")) for p in result or []]

    async def status(self) -> PtzStatus:
        result = await self._call(self._ptz, "GetStatus", {"ProfileToken": self.profile_token})
        position = getattr(result, "Position", None)
        pan_tilt = getattr(position, "PanTilt", None)
        zoom = getattr(position, "Zoom", None)
        move = getattr(result, "MoveStatus", None)
        states = {str(getattr(move, "PanTilt", "IDLE")), str(getattr(move, "Zoom", "IDLE"))}
        return PtzStatus(
            pan=None if pan_tilt is None else float(pan_tilt.x),
            tilt=None if pan_tilt is None else float(pan_tilt.y),
            zoom=None if zoom is None else float(zoom.x),
            moving="MOVING" in states,
        )

    async def snapshot_uri(self) -> str | None:
        result = await self._call(
            self._media, "GetSnapshotUri", {"ProfileToken": self.profile_token}
        )
        uri = getattr(result, "Uri", None)
        return None if uri is None else str(uri)

    async def stream_uri(self) -> str | None:
        result = await self._call(
            self._media,
            "GetStreamUri",
            {
                "ProfileToken": self.profile_token,
                "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
            },
        )
        uri = getattr(result, "Uri", None)
        return None if uri is None else str(uri)

    async def close(self) -> None:
        device, self._device, self._media, self._ptz = self._device, None, None, None
        if device is not None:
            await device.close()


# -- the action ---------------------------------------------------------------------------


class CueResult(StrictModel):
    incident_id: str
    camera_id: str
    method: Literal["preset", "absolute"]
    preset_token: str | None = None
    pan: float | None = None
    tilt: float | None = None
    zoom: float | None = None
    bearing_deg: float
    tilt_deg: float
    distance_m: float
    command_ms: float
    settled_ms: float | None = None
    snapshot_uri: str | None = None
    stream_uri: str | None = None
    approximate: bool = Field(
        default=False,
        description="the incident is an approximate area: the camera was framed on the whole "
        "area (as wide as its zoom allows), not on a located point",
    )
    frame_m: float | None = Field(default=None, description="width the zoom was set to frame")


class CameraCuer:
    """Ranks cameras and cues one; keeps an ONVIF session per camera."""

    def __init__(
        self,
        cameras: list[OnvifPtzCamera],
        secrets: SecretBox | None = None,
        audit: AuditSink = discard,
    ) -> None:
        ids = [c.id for c in cameras]
        if len(ids) != len(set(ids)):
            raise ValueError("camera ids must be unique")
        self.cameras = {c.id: c for c in cameras}
        self.secrets = secrets
        self.audit = audit
        self._clients: dict[str, OnvifPtzClient] = {}

    def rank(self, incident: IncidentRef) -> list[CameraCandidate]:
        return rank_cameras(list(self.cameras.values()), incident)

    def _password(self, camera: OnvifPtzCamera) -> SecretStr | None:
        if camera.password_enc is None:
            return None
        if self.secrets is None:
            raise CueError(
                f"camera {camera.id} has an encrypted password but no secret key is configured"
            )
        return self.secrets.decrypt(camera.password_enc)

    def client(self, camera_id: str) -> OnvifPtzClient:
        client = self._clients.get(camera_id)
        if client is None:
            camera = self.cameras[camera_id]
            client = OnvifPtzClient(camera, self._password(camera))
            self._clients[camera_id] = client
        return client

    async def warm_up(self) -> None:
        """Open every camera's session ahead of the first incident (errors are logged)."""
        for camera_id in self.cameras:
            try:
                await self.client(camera_id).connect()
            except Exception as exc:  # a camera being down must not stop the others
                log.warning("camera %s: ONVIF connect failed: %s", camera_id, type(exc).__name__)

    async def cue(
        self,
        incident: IncidentRef,
        camera_id: str | None = None,
        *,
        actor: str,
        wait_settled_s: float = 0.0,
        started: float | None = None,
    ) -> CueResult:
        """Point ``camera_id`` (default: the best-ranked usable camera) at ``incident``.

        ``started`` is the ``time.perf_counter()`` at which the incident was handed over
        (defaults to now); ``command_ms`` and ``settled_ms`` count from it."""
        t0 = time.perf_counter() if started is None else started
        if camera_id is None:
            usable = [c for c in self.rank(incident) if c.usable]
            if not usable:
                raise CueError(f"no camera can see incident {incident.id}")
            camera_id = usable[0].camera_id
        camera = self.cameras.get(camera_id)
        if camera is None:
            raise CueError(f"unknown camera {camera_id!r}")
        candidate = assess(camera, incident)
        try:
            return await self._cue(camera, candidate, incident, actor, wait_settled_s, t0)
        except Exception as exc:
            message = (
                f"{type(exc).__name__}: {exc}" if isinstance(exc, CueError) else type(exc).__name__
            )
            self.audit(
                CameraCueFailed(
                    actor=actor, incident_id=incident.id, camera_id=camera.id, error=message
                )
            )
            # The session may be broken (camera rebooted): reconnect on the next cue.
            client = self._clients.pop(camera.id, None)
            if client is not None:
                await client.close()
            if isinstance(exc, CueError):
                raise
            raise CueError(f"camera {camera.id}: cue failed ({type(exc).__name__})") from exc

    async def _cue(
        self,
        camera: OnvifPtzCamera,
        candidate: CameraCandidate,
        incident: IncidentRef,
        actor: str,
        wait_settled_s: float,
        t0: float,
    ) -> CueResult:
        pointing = candidate.pointing
        preset = candidate.nearest_preset
        use_preset = preset is not None and (
            camera.cue_mode == "preset"
            or (camera.cue_mode == "auto" and preset.distance_m <= camera.preset_match_m)
        )
        if not use_preset and not pointing.reachable:
            raise CueError(f"camera {camera.id} cannot point at incident {incident.id}")
        client = self.client(camera.id)
        await client.connect()
        pan = tilt = zoom = None
        if use_preset:
            assert preset is not None
            await client.goto_preset(preset.token)
        else:
            assert pointing.pan is not None and pointing.tilt is not None
            pan, tilt, zoom = pointing.pan, pointing.tilt, pointing.zoom
            await client.absolute_move(pan, tilt, zoom)
        command_ms = (time.perf_counter() - t0) * 1000.0
        settled_ms: float | None = None
        if wait_settled_s > 0.0:
            deadline = time.perf_counter() + wait_settled_s
            while time.perf_counter() < deadline:
                status = await client.status()
                if not status.moving:
                    settled_ms = (time.perf_counter() - t0) * 1000.0
                    break
                await asyncio.sleep(0.02)
        snapshot = strip_userinfo(await client.snapshot_uri())
        stream = strip_userinfo(await client.stream_uri())
        result = CueResult(
            incident_id=incident.id,
            camera_id=camera.id,
            method="preset" if use_preset else "absolute",
            preset_token=preset.token if use_preset and preset is not None else None,
            pan=pan,
            tilt=tilt,
            zoom=zoom,
            bearing_deg=pointing.bearing_deg,
            tilt_deg=pointing.tilt_deg,
            distance_m=pointing.distance_m,
            command_ms=command_ms,
            settled_ms=settled_ms,
            snapshot_uri=snapshot,
            stream_uri=stream,
            approximate=incident.approximate,
            frame_m=None if use_preset else frame_width(camera, incident.radius_m),
        )
        self.audit(CameraCued(actor=actor, **result.model_dump()))
        return result

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()
