"""The ONVIF PTZ test device the tests talk to (implementation in ``ouie.verify.peers`` so
that ``ouie bench verify`` and ``ouie demo`` can run it too)."""

from ouie.verify.peers.onvif_device import (
    PAN_TILT_SPACE,
    PROFILE_TOKEN,
    DevicePreset,
    OnvifPtzDevice,
    RecordedCall,
    password_digest,
)

__all__ = [
    "PAN_TILT_SPACE",
    "PROFILE_TOKEN",
    "DevicePreset",
    "OnvifPtzDevice",
    "RecordedCall",
    "password_digest",
]
