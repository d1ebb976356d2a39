"""The ``compliance:`` section of the hub's settings: who is responsible, on what legal basis,
where and when the system listens, how long data may be kept, and whether this is a
production deployment (which refuses to start on any ``ouie check`` finding).

Every field is something the controller fills in; ouie never invents a legal basis. The
same values feed ``ouie check``, the generated DPIA, the GDPR art. 30 register entry and
the public notice, so the documents cannot drift from what actually runs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from ouie.config.base import Section
from ouie.core.geometry import area_perimeter_m, validate_polygon

Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
HoursWindow = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")]

#: GDPR art. 6(1) points. Consent (a) and contract (b) do not fit listening to a street;
#: ``ouie check`` reports them (rule ``legal-basis-unsuitable``).
LawfulBasis = Literal["6(1)(a)", "6(1)(b)", "6(1)(c)", "6(1)(d)", "6(1)(e)", "6(1)(f)"]

LAWFUL_BASIS_TEXT: dict[str, str] = {
    "6(1)(a)": "consent of the data subject",
    "6(1)(b)": "performance of a contract",
    "6(1)(c)": "compliance with a legal obligation of the controller",
    "6(1)(d)": "protection of vital interests",
    "6(1)(e)": "performance of a task carried out in the public interest or in the exercise "
    "of official authority vested in the controller",
    "6(1)(f)": "legitimate interests of the controller",
}

DEFAULT_PURPOSES = (
    "Detect sounds that indicate an emergency or an offence in the public space (gunshot, "
    "explosion, breaking glass, scream, vehicle crash, siren, car alarm, spray can) and "
    "alert the control room so that an operator can verify and dispatch help.",
)


class Controller(Section):
    """The data controller (GDPR art. 4(7)), e.g. a municipality."""

    name: Text
    address: Text
    email: Email
    phone: str | None = Field(default=None, max_length=40)
    representative: str | None = Field(
        default=None, max_length=200, description="person acting for the controller"
    )


class DataProtectionOfficer(Section):
    """The DPO (GDPR art. 37–39) people can write to."""

    name: str | None = Field(default=None, max_length=200)
    email: Email
    phone: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=500)


class LegalBasis(Section):
    """The lawful basis (art. 6(1)) and the instrument that grants it (law, deliberation)."""

    article: LawfulBasis
    instrument: Text = Field(
        description="the law, decree or council deliberation the processing rests on"
    )
    description: str | None = Field(default=None, max_length=2000)


class Zone(Section):
    """The declared listening zone: a polygon of (lat, lon) WGS84 points and the hours."""

    name: Text
    polygon: list[tuple[float, float]] = Field(min_length=3, description="[[lat, lon], ...]")
    hours: list[HoursWindow] = Field(
        default_factory=list,
        description='operating windows "HH:MM-HH:MM" (local time); empty: around the clock',
    )

    @field_validator("polygon")
    @classmethod
    def _wgs84(cls, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for lat, lon in points:
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                raise ValueError(f"({lat}, {lon}) is not a WGS84 latitude, longitude")
        # A self-crossing or flat ring has no inside; refuse it here rather than let
        # `ouie check`, the console and the DPIA each guess which sensors are in the zone.
        validate_polygon(points)
        return points

    def area_perimeter_m(self) -> tuple[float, float]:
        """Area (m²) and perimeter (m) on the WGS84 ellipsoid (``core.geometry``)."""
        return area_perimeter_m(self.polygon)

    def hours_per_day(self) -> float:
        """Listening hours per day (24 when no window is set; overlaps counted once)."""
        if not self.hours:
            return 24.0
        minutes = set[int]()
        for window in self.hours:
            start_s, end_s = window.split("-")
            start, end = _minute(start_s), _minute(end_s)
            span = range(start, end) if start < end else [*range(start, 1440), *range(end)]
            minutes.update(span)
        return len(minutes) / 60.0


def _minute(hhmm: str) -> int:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return hours * 60 + minutes


class DeclaredSensor(Section):
    """A sensor as declared to the public and in the DPIA (id and mounting position)."""

    id: Identifier
    site: Identifier | None = None
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    height_m: float | None = Field(default=None, ge=0.0, le=200.0)
    mounting: str | None = Field(default=None, max_length=200)


class ComplianceSettings(Section):
    """``compliance:`` of hub.yaml."""

    production: bool = Field(
        default=False, description="production mode: the hub refuses to start on findings"
    )
    controller: Controller | None = None
    dpo: DataProtectionOfficer | None = None
    legal_basis: LegalBasis | None = None
    legal_max_retention_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="the longest retention the legal basis allows (e.g. 30 days)",
    )
    purposes: list[Text] = Field(default_factory=lambda: list(DEFAULT_PURPOSES))
    zone: Zone | None = None
    sensors: list[DeclaredSensor] = Field(
        default_factory=list, description="sensor positions as declared in the DPIA and notice"
    )
    recipients: list[Text] = Field(
        default_factory=lambda: ["Authorised control-room operators and supervisors"],
        description="who receives incident data (art. 30(1)(d))",
    )
    processors: list[Text] = Field(
        default_factory=list, description="processors (hosting, maintenance), art. 28"
    )
    transparency_url: str | None = Field(default=None, max_length=500)
    supervisory_authority: Text = Field(
        default="Commission nationale de l'informatique et des libertés (CNIL), "
        "3 place de Fontenoy, TSA 80715, 75334 Paris Cedex 07, www.cnil.fr"
    )
    transfers_outside_eea: bool = Field(
        default=False, description="whether any data leaves the EEA (art. 30(1)(e))"
    )

    @field_validator("sensors")
    @classmethod
    def _unique_sensors(cls, sensors: list[DeclaredSensor]) -> list[DeclaredSensor]:
        seen: set[str] = set()
        for sensor in sensors:
            if sensor.id in seen:
                raise ValueError(f"sensor {sensor.id!r} is declared twice")
            seen.add(sensor.id)
        return sensors
