"""Settings of the PTZ cameras that can be cued (``verify.cameras``; plugin ``onvif_ptz``).

How an incident is turned into pan, tilt and zoom from these is in ``ouie.verify.cctv``.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from ouie.config.secrets import EncryptedSecret
from ouie.core.model_base import StrictModel

CameraId = str


class PtzLimits(StrictModel):
    """How the camera's pan/tilt angles map onto ONVIF's generic space [-1, 1]."""

    heading_deg: float = Field(
        default=0.0, ge=0.0, lt=360.0, description="azimuth (° from true north) at pan 0"
    )
    pan_min_deg: float = Field(default=-180.0, ge=-360.0, le=360.0, description="pan at x=-1")
    pan_max_deg: float = Field(default=180.0, ge=-360.0, le=360.0, description="pan at x=+1")
    pan_clockwise: bool = Field(default=True, description="pan angle grows clockwise")
    tilt_min_deg: float = Field(default=-90.0, ge=-180.0, le=180.0, description="tilt at y=-1")
    tilt_max_deg: float = Field(default=30.0, ge=-180.0, le=180.0, description="tilt at y=+1")
    tilt_up_positive: bool = Field(default=True, description="tilt angle grows upwards")
    fov_wide_deg: float = Field(default=60.0, gt=0.0, lt=180.0, description="hfov at zoom 0")
    fov_tele_deg: float = Field(default=3.0, gt=0.0, lt=180.0, description="hfov at zoom 1")

    @model_validator(mode="after")
    def _ranges(self) -> PtzLimits:
        if self.pan_max_deg <= self.pan_min_deg:
            raise ValueError("pan_max_deg must be greater than pan_min_deg")
        if self.pan_max_deg - self.pan_min_deg > 360.0:
            raise ValueError("the pan range cannot exceed 360°")
        if self.tilt_max_deg <= self.tilt_min_deg:
            raise ValueError("tilt_max_deg must be greater than tilt_min_deg")
        if self.fov_tele_deg > self.fov_wide_deg:
            raise ValueError("fov_tele_deg must not exceed fov_wide_deg")
        return self


class CameraPreset(StrictModel):
    token: str = Field(min_length=1, max_length=64, description="ONVIF PresetToken")
    name: str = ""
    lat: float = Field(ge=-90.0, le=90.0, description="ground point the preset looks at")
    lon: float = Field(ge=-180.0, le=180.0)


class OnvifPtzCamera(StrictModel):
    """One camera of the registry (``verify.cameras`` in config)."""

    type: Literal["onvif_ptz"] = "onvif_ptz"
    id: CameraId = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str = ""
    site: str | None = Field(default=None, description="only cued for incidents of this site")
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    height_m: float = Field(gt=0.0, le=500.0, description="lens height above ground")
    onvif_url: str = Field(description="http(s)://host[:port] of the device service")
    username: str | None = None
    password_enc: EncryptedSecret | None = Field(
        default=None, description="Fernet token of the password (`ouie verify encrypt`)"
    )
    profile_token: str | None = Field(
        default=None, description="media profile; default: the first with PTZ"
    )
    ptz: PtzLimits = Field(default_factory=PtzLimits)
    max_range_m: float = Field(default=300.0, gt=0.0)
    aim_height_m: float = Field(default=1.0, ge=0.0, description="aim this high above ground")
    min_frame_width_m: float = Field(default=20.0, gt=0.0)
    presets: list[CameraPreset] = Field(default_factory=list)
    preset_match_m: float = Field(default=15.0, ge=0.0)
    cue_mode: Literal["auto", "preset", "absolute"] = "auto"
    timeout_s: float = Field(default=5.0, gt=0.0, le=120.0)

    @model_validator(mode="after")
    def _endpoint(self) -> OnvifPtzCamera:
        parts = urlsplit(self.onvif_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("onvif_url must be http(s)://host[:port]")
        if parts.username or parts.password:
            raise ValueError("put credentials in username / password_enc, not in onvif_url")
        return self
