"""Settings of the drone docks and the rules every mission is checked against
(``verify.docks``, ``verify.flight_rules``; plugin ``mavlink_dock``).

Planning and the pre-flight checklist built on them are in ``ouie.verify.drone``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ouie.core.model_base import StrictModel

#: The EU's maximum height for the Open category and the standard scenarios (m).
EU_MAX_HEIGHT_M = 120.0

UasClass = Literal["C0", "C1", "C2", "C3", "C4", "C5", "C6", "legacy"]
CONNECTION_SCHEMES = ("udpin:", "udpout:", "udp:", "tcp:", "tcpin:", "serial:")


class DroneDock(StrictModel):
    """A drone in its dock (``verify.docks`` in config)."""

    type: Literal["mavlink_dock"] = "mavlink_dock"
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str = ""
    site: str | None = None
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    connection: str = Field(
        description="pymavlink address: udpout:host:port, udpin:host:port, tcp:host:port, "
        "serial:/dev/ttyX:baud"
    )
    target_system: int = Field(default=1, ge=1, le=255)
    target_component: int = Field(default=1, ge=0, le=255)
    autopilot: Literal["ardupilot"] = "ardupilot"
    max_range_m: float = Field(default=1000.0, gt=0.0)
    max_altitude_m: float = Field(default=EU_MAX_HEIGHT_M, gt=0.0)
    transit_altitude_m: float = Field(default=60.0, gt=0.0)
    standoff_m: float = Field(default=40.0, ge=0.0, description="orbit radius / standoff")
    pattern: Literal["orbit", "hover"] = "orbit"
    orbit_turns: float = Field(default=3.0, gt=0.0, le=50.0)
    loiter_s: float = Field(default=120.0, gt=0.0, le=3600.0)
    cruise_speed_m_s: float = Field(default=10.0, gt=0.0, le=40.0)
    climb_rate_m_s: float = Field(default=2.5, gt=0.0)
    uas_class: UasClass = "C6"
    has_night_light: bool = Field(default=True, description="green flashing light fitted")
    vlos_m: float = Field(default=500.0, gt=0.0, description="pilot's visual line of sight")
    airspace_observers: bool = False

    @model_validator(mode="after")
    def _check(self) -> DroneDock:
        if not self.connection.startswith(CONNECTION_SCHEMES):
            raise ValueError(f"connection must start with one of {', '.join(CONNECTION_SCHEMES)}")
        if self.transit_altitude_m > self.max_altitude_m:
            raise ValueError("transit_altitude_m exceeds max_altitude_m")
        return self


class FlightRules(StrictModel):
    """Operating rules every mission is checked against (``verify.flight_rules``)."""

    max_altitude_m: float = Field(default=EU_MAX_HEIGHT_M, gt=0.0, le=EU_MAX_HEIGHT_M)
    max_distance_m: float = Field(default=2000.0, gt=0.0)
    no_fly_geojson: Path | None = Field(default=None, description="GeoJSON no-fly zones")
    geofence_margin_m: float = Field(default=20.0, ge=0.0)
    night_flight_allowed: bool = False
    category: Literal["open", "specific"] = "specific"
    scenario: Literal["none", "STS-01", "STS-02", "authorisation"] = "STS-02"
    operation: Literal["VLOS", "BVLOS"] = "BVLOS"
    authorisation_ref: str = Field(default="", description="operational authorisation id")
    operator_registration: str = Field(default="", description="UAS operator registration")
    declarations: list[str] = Field(
        default_factory=list, description="extra items the supervisor must confirm"
    )
    plan_valid_s: float = Field(default=300.0, gt=0.0, description="approve within")
    launch_within_s: float = Field(default=120.0, gt=0.0, description="launch after approval")

    @model_validator(mode="after")
    def _coherent(self) -> FlightRules:
        if self.category == "open" and (self.scenario != "none" or self.operation != "VLOS"):
            raise ValueError("the Open category has no scenario and is VLOS only")
        if self.category == "specific" and self.scenario == "none":
            raise ValueError("the Specific category needs STS-01, STS-02 or an authorisation")
        if self.scenario == "STS-01" and self.operation != "VLOS":
            raise ValueError("STS-01 is a VLOS scenario")
        if self.scenario == "STS-02" and self.operation != "BVLOS":
            raise ValueError("STS-02 is a BVLOS scenario")
        if self.scenario == "authorisation" and not self.authorisation_ref:
            raise ValueError("scenario 'authorisation' needs authorisation_ref")
        return self
