"""Settings of the verification actions (the ``verify:`` section of the hub's config, or a
file of its own; env ``OUIE_VERIFY__*``).

```yaml
secrets:
  key_file: /etc/ouie/secret.key        # or OUIE_SECRET_KEY in the environment
cueing:
  auto_cue_labels: [gunshot, explosion]  # cue the best camera without an operator
  wait_settled_s: 0
cameras:
  - id: cam-hotel-de-ville
    lat: 45.43975
    lon: 4.38725
    height_m: 8
    onvif_url: http://10.0.0.21
    username: ouie
    password_enc: gAAAAAB…               # `ouie verify encrypt`
    ptz: {heading_deg: 0, pan_min_deg: -180, pan_max_deg: 180, tilt_min_deg: -90, tilt_max_deg: 30}
    presets: [{token: "1", name: "place", lat: 45.4399, lon: 4.3880}]
docks:
  - id: dock-1
    lat: 45.4401
    lon: 4.3860
    connection: udpout:10.0.0.50:14550
flight_rules:
  no_fly_geojson: /etc/ouie/no-fly.geojson
  category: specific
  scenario: STS-02
  operation: BVLOS
  operator_registration: FRA-OP-0000
outputs:
  - {type: webhook, id: police, url: https://example.org/hook, secret_enc: gAAAAAB…}
  - {type: cap, sender: ouie@ville.example}
  - {type: mqtt, url: mqtt://127.0.0.1:1883}
  - {type: vms_webhook, id: vms, url: http://vms.local/bookmarks}
```

The cameras', docks' and outputs' models are in ``ouie.config.cameras``, ``drones`` and
``outputs``; the plugins in ``ouie.verify`` import them from there.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ouie.config.base import Section
from ouie.config.cameras import OnvifPtzCamera
from ouie.config.drones import DroneDock, FlightRules
from ouie.config.outputs import OutputConfig
from ouie.config.secrets import SecretSettings
from ouie.core.labels import EventLabel


class CueingSettings(Section):
    auto_cue_labels: list[EventLabel] = Field(
        default_factory=list, description="classes cued automatically on a new incident"
    )
    wait_settled_s: float = Field(
        default=0.0, ge=0.0, le=30.0, description="wait for GetStatus IDLE after a move"
    )


class VerifySettings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="forbid", env_prefix="OUIE_VERIFY__", env_nested_delimiter="__"
    )

    secrets: SecretSettings = Field(default_factory=SecretSettings)
    cueing: CueingSettings = Field(default_factory=CueingSettings)
    cameras: list[OnvifPtzCamera] = Field(default_factory=list)
    docks: list[DroneDock] = Field(default_factory=list)
    flight_rules: FlightRules = Field(default_factory=FlightRules)
    outputs: list[OutputConfig] = Field(default_factory=list)
    dead_letter_file: Path | None = Field(
        default=None, description="JSON-lines dead letters when the hub gives no store"
    )


def load_verify_settings(path: Path | None) -> VerifySettings:
    from ouie.config.loader import load_settings

    return load_settings(VerifySettings, path)
