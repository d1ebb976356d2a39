"""The ``compliance:`` section of the hub's settings: who is responsible, on what legal basis,
where and when the system listens, how long data may be kept, and whether this is a
production deployment (which refuses to start on any ``ouie check`` finding).

Every field is something the controller fills in; ouie never invents a legal basis. The
same values feed ``ouie check``, the generated DPIA, the GDPR art. 30 register entry and
the public notice, so the documents cannot drift from what actually runs.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from ouie.config.base import Section
from ouie.core.geometry import area_perimeter_m, validate_polygon
from ouie.core.labels import EVENT_LABELS, EventLabel

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

Lang = Literal["fr", "en"]


class Localized(Section):
    """A text the public or the prefect reads, in both languages of the documents: the French
    page shows ``fr``, the English one ``en`` (one string shown to both was English on the
    French page)."""

    fr: Text
    en: Text

    def text(self, lang: Lang) -> str:
        return self.fr if lang == "fr" else self.en


class Purpose(Localized):
    """One purpose of the processing, limited to the event classes it names."""

    labels: list[EventLabel] = Field(
        default_factory=lambda: list(EVENT_LABELS),
        min_length=1,
        description="the classes this purpose needs; the dossier lists them with it",
    )


DEFAULT_PURPOSES = (
    Purpose(
        en="Detect sounds that indicate an emergency or an offence in the public space "
        "(gunshot, explosion, breaking glass, scream, vehicle crash, siren, car alarm, spray "
        "can) and alert the control room so that an operator can verify and dispatch help.",
        fr="Détecter les sons qui révèlent une urgence ou une infraction sur la voie publique "
        "(coup de feu, explosion, bris de verre, cri, accident, sirène, alarme de véhicule, "
        "bombe de peinture) et alerter le centre de supervision, afin qu'un opérateur vérifie "
        "et fasse intervenir les secours.",
    ),
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
    permanent: bool = Field(
        default=False,
        description="the instrument authorises the processing without a time limit; "
        "otherwise production needs a bounded compliance.experiment",
    )
    audio_triggered_cameras: str | None = Field(
        default=None,
        max_length=2000,
        description="the provision of the instrument that explicitly authorises turning "
        "video-protection cameras on an acoustic detection without an operator; without it "
        "automatic cueing is refused in production (rule camera-auto-cue)",
    )


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


class ExperimentPhases(Section):
    """The dated phases the prefect asked for (the dossier's calendar)."""

    installation: date = Field(description="sensors mounted, hub installed")
    calibration: date = Field(description="levels, clocks and thresholds set on site")
    evaluation: date = Field(description="the evaluation period starts (operators' feedback)")
    mid_term_review: date
    decision: date = Field(description="the controller decides to stop, extend or generalise")


class SuccessCriteria(Section):
    """What the experiment must show, measured from operators' feedback."""

    min_precision: float = Field(
        ge=0.0, le=1.0, description="alerts confirmed true / alerts judged, from feedback"
    )
    max_false_alerts_per_sensor_day: float = Field(
        ge=0.0, description="alerts judged false per sensor and listening day"
    )
    min_feedback: int = Field(
        default=30, ge=1, description="judged alerts needed before precision is read"
    )
    max_median_ack_s: float | None = Field(
        default=None, gt=0.0, description="median time for an operator to acknowledge"
    )


class StopCriteria(Section):
    """When the experiment stops before its end."""

    below_precision: float | None = Field(
        default=None, ge=0.0, le=1.0, description="stop when precision falls below this"
    )
    above_false_alerts_per_sensor_day: float | None = Field(default=None, ge=0.0)
    conditions: list[Localized] = Field(
        default_factory=list, description="other stop conditions, in words"
    )


class Experiment(Section):
    """A bounded experiment: production runs between ``start`` and ``end`` only. At the end the
    hub purges every detection and incident and refuses to run; an extension is an audited
    admin action that needs a DPIA regenerated for the new end (``ouie experiment extend``).
    """

    start: date
    end: date = Field(description="last day of listening (inclusive, in ``timezone``)")
    timezone: str = Field(default="Europe/Paris", description="where start and end are dates")
    phases: ExperimentPhases | None = None
    reviews: list[date] = Field(default_factory=list, description="review meetings")
    success: SuccessCriteria
    stop: StopCriteria = Field(default_factory=StopCriteria)
    alternatives: list[Localized] = Field(
        default_factory=list,
        description="less intrusive means considered, and why they were not enough",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
        return name

    @model_validator(mode="after")
    def _in_order(self) -> Experiment:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.phases is not None:
            dates = [self.start, *self.phases.model_dump().values(), self.end]
            if dates != sorted(dates):
                raise ValueError(
                    "phases must be in order, between start and end: installation ≤ "
                    "calibration ≤ evaluation ≤ mid_term_review ≤ decision"
                )
        for review in self.reviews:
            if not self.start <= review <= self.end:
                raise ValueError(f"review {review} is outside {self.start}..{self.end}")
        return self

    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time(0), ZoneInfo(self.timezone))

    def ends_at(self, end: date | None = None) -> datetime:
        """The instant listening must stop: midnight after ``end`` (or another last day, such
        as the one in force in the audit log), local time."""
        last = end if end is not None else self.end
        return datetime.combine(last + timedelta(days=1), time(0), ZoneInfo(self.timezone))

    def days(self) -> int:
        return (self.end - self.start).days + 1


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
    purposes: list[Purpose] = Field(
        default_factory=lambda: list(DEFAULT_PURPOSES),
        min_length=1,
        description="each in French and English (fr, en), with the classes it needs",
    )
    experiment: Experiment | None = Field(
        default=None, description="the bounded experiment production runs within"
    )
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

    def digest(self) -> str:
        """sha256 of this section as JSON: a DPIA records it, and an experiment extension
        is only accepted with a DPIA generated from exactly the configuration it extends."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
