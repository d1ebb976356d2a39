"""Drone docks, mission planning and pre-flight checks (plugin ``mavlink_dock``).

Mission, from the dock to the incident and back (ArduPilot mission conventions):

    0  home placeholder (ArduPilot overwrites item 0 with the home position)
    1  NAV_TAKEOFF to the transit altitude (relative to the dock)
    2  DO_CHANGE_SPEED to the cruise speed
    3  NAV_WAYPOINT at the standoff point: ``standoff_m`` short of the incident on the
       line from the dock, at transit altitude
    4  DO_SET_ROI_LOCATION on the incident (the gimbal camera looks at it)
    5  NAV_LOITER_TURNS around the incident at radius ``standoff_m`` (``pattern: orbit``)
       or NAV_LOITER_TIME at the standoff point (``pattern: hover``)
    6  NAV_RETURN_TO_LAUNCH

All altitudes are relative to the dock (``MAV_FRAME_GLOBAL_RELATIVE_ALT``); with the flat
ground assumption of the mission planner (the Earth's drop, d²/2R, is 8 cm at 1 km and
ignored) that is height above ground. Positions go through ``ouie.core.geometry``'s
``LocalFrame`` around the dock.

Pre-flight checks (``checklist``), each shown to the supervisor: altitude ≤ 120 m and the
dock's and the rules' limits; farthest point of the mission within the dock's range and
the rules' distance; no leg and no part of the orbit inside or within
``geofence_margin_m`` of a GeoJSON no-fly zone; night (sun below −6°: the end of civil
twilight, the EU definition) only where allowed and with the anti-collision light; the EU
operating category: Open (VLOS, class C0–C4 or legacy), Specific STS-01 (VLOS, C5),
Specific STS-02 (BVLOS, C6, ≤ 1 km from the pilot or 2 km with airspace observers) or an
operational authorisation. Automatic items pass or fail; declared items (pilot
competency, controlled ground area, …) must be confirmed by the approving supervisor. A
plan with a failed item cannot be approved, so it cannot be sent.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from ouie.config.drones import EU_MAX_HEIGHT_M, DroneDock, FlightRules
from ouie.core.geometry import (
    LocalFrame,
    Point,
    circle_points,
    point_in_polygon,
    segment_polygon_distance,
    validate_polygon,
)
from ouie.core.model_base import StrictModel
from ouie.verify.incident import IncidentRef
from ouie.verify.sun import sun_elevation_deg

# MAVLink constants used by the plan (common.xml); kept here so planning needs no pymavlink.
MAV_CMD_NAV_WAYPOINT = 16
MAV_CMD_NAV_LOITER_TURNS = 18
MAV_CMD_NAV_LOITER_TIME = 19
MAV_CMD_NAV_RETURN_TO_LAUNCH = 20
MAV_CMD_NAV_TAKEOFF = 22
MAV_CMD_DO_CHANGE_SPEED = 178
MAV_CMD_DO_SET_ROI_LOCATION = 195
MAV_FRAME_GLOBAL = 0
MAV_FRAME_GLOBAL_RELATIVE_ALT = 3
MAV_FRAME_MISSION = 2

NIGHT_SUN_ELEVATION_DEG = -6.0

# -- no-fly zones -------------------------------------------------------------------------

LonLatRing = list[tuple[float, float]]


class NoFlyZone(StrictModel):
    name: str
    polygons: list[list[LonLatRing]] = Field(description="GeoJSON order: [lon, lat]")


class GeofenceError(ValueError):
    pass


def parse_no_fly_zones(geojson: dict[str, Any]) -> list[NoFlyZone]:
    """Polygon and MultiPolygon features (or geometries) of a GeoJSON object."""
    if geojson.get("type") == "FeatureCollection":
        features = list(geojson.get("features") or [])
    elif geojson.get("type") == "Feature":
        features = [geojson]
    else:
        features = [{"type": "Feature", "geometry": geojson, "properties": {}}]
    zones: list[NoFlyZone] = []
    for index, feature in enumerate(features):
        geometry = feature.get("geometry") or {}
        props = feature.get("properties") or {}
        name = str(props.get("name") or props.get("id") or f"zone {index + 1}")
        kind = geometry.get("type")
        coords = geometry.get("coordinates") or []
        if kind == "Polygon":
            polygons = [coords]
        elif kind == "MultiPolygon":
            polygons = list(coords or [])
        else:
            continue
        try:
            parsed = [
                [[(float(p[0]), float(p[1])) for p in ring] for ring in polygon]
                for polygon in polygons
            ]
        except (TypeError, ValueError, IndexError) as exc:
            raise GeofenceError(f"no-fly zone {name!r} has malformed coordinates") from exc
        if not parsed:
            raise GeofenceError(f"no-fly zone {name!r} has no polygon")
        for polygon in parsed:
            try:  # at load time, so a bad file fails the service's start, not a plan
                validate_polygon(polygon[0], polygon[1:])
            except ValueError as exc:
                raise GeofenceError(f"no-fly zone {name!r}: {exc}") from exc
        zones.append(NoFlyZone(name=name, polygons=parsed))
    return zones


def load_no_fly_zones(path: Path) -> list[NoFlyZone]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise GeofenceError(f"cannot read no-fly zones from {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise GeofenceError(f"{path} is not a GeoJSON object")
    return parse_no_fly_zones(data)


# -- the plan -----------------------------------------------------------------------------


class MissionItem(StrictModel):
    seq: int = Field(ge=0)
    command: int
    frame: int
    lat: float
    lon: float
    alt_m: float
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    autocontinue: int = 1
    label: str = ""


ChecklistStatus = Literal["pass", "fail", "confirm"]


class ChecklistItem(StrictModel):
    id: str
    text: str
    kind: Literal["auto", "declared"]
    status: ChecklistStatus
    detail: str = ""


class MissionPlan(StrictModel):
    mission_id: str
    incident_id: str
    dock_id: str
    planned_by: str
    planned_at: AwareDatetime
    incident_lat: float
    incident_lon: float
    standoff_lat: float
    standoff_lon: float
    transit_altitude_m: float
    orbit_radius_m: float
    pattern: Literal["orbit", "hover"]
    distance_to_incident_m: float
    farthest_from_dock_m: float
    path_length_m: float
    estimated_duration_s: float
    night: bool
    sun_elevation_deg: float
    items: list[MissionItem]
    checklist: list[ChecklistItem]
    approximate: bool = Field(
        default=False,
        description="the incident is an approximate area (the orbit runs round its edge)",
    )

    @property
    def failed_checks(self) -> list[str]:
        return [c.id for c in self.checklist if c.status == "fail"]

    @property
    def declared_items(self) -> list[str]:
        return [c.id for c in self.checklist if c.status == "confirm"]

    @property
    def sendable(self) -> bool:
        """No automatic check failed (declared items are confirmed at approval)."""
        return not self.failed_checks

    def digest(self) -> str:
        """SHA-256 of what the vehicle would fly; an approval is bound to it."""
        body = json.dumps(
            {
                "mission_id": self.mission_id,
                "dock_id": self.dock_id,
                "incident_id": self.incident_id,
                "items": [i.model_dump(mode="json") for i in self.items],
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _item(
    seq: int, command: int, lat: float, lon: float, alt: float, label: str, **params: float
) -> MissionItem:
    frame = MAV_FRAME_GLOBAL_RELATIVE_ALT
    if command in (MAV_CMD_DO_CHANGE_SPEED, MAV_CMD_NAV_RETURN_TO_LAUNCH):
        frame = MAV_FRAME_MISSION
    return MissionItem(
        seq=seq, command=command, frame=frame, lat=lat, lon=lon, alt_m=alt, label=label, **params
    )


def _check(checks: list[ChecklistItem], id: str, text: str, ok: bool, detail: str = "") -> None:
    checks.append(
        ChecklistItem(id=id, text=text, kind="auto", status="pass" if ok else "fail", detail=detail)
    )


def _declare(checks: list[ChecklistItem], id: str, text: str) -> None:
    checks.append(ChecklistItem(id=id, text=text, kind="declared", status="confirm"))


def plan_mission(
    dock: DroneDock,
    incident: IncidentRef,
    rules: FlightRules,
    zones: list[NoFlyZone],
    *,
    planned_by: str,
    at: datetime,
    mission_id: str | None = None,
) -> MissionPlan:
    """The mission for ``incident`` from ``dock`` with its pre-flight checklist."""
    frame = LocalFrame(dock.lat, dock.lon)
    target = frame.to_en(incident.lat, incident.lon)
    distance = math.hypot(*target)
    # an approximate area is searched, not looked at: the orbit runs round its edge with the
    # camera on its centre (the range and geofence checks then cover the whole circle)
    radius = max(dock.standoff_m, incident.radius_m) if incident.approximate else dock.standoff_m
    if distance > radius:
        scale = (distance - radius) / distance
        standoff: Point = (target[0] * scale, target[1] * scale)
    else:
        standoff = (0.0, 0.0)
    s_lat, s_lon = frame.to_latlon(*standoff)
    alt = dock.transit_altitude_m

    items = [
        _item(0, MAV_CMD_NAV_WAYPOINT, dock.lat, dock.lon, 0.0, "home"),
        _item(1, MAV_CMD_NAV_TAKEOFF, dock.lat, dock.lon, alt, "take off"),
        _item(
            2,
            MAV_CMD_DO_CHANGE_SPEED,
            0.0,
            0.0,
            0.0,
            "cruise speed",
            param1=1.0,
            param2=dock.cruise_speed_m_s,
            param3=-1.0,
        ),
        _item(3, MAV_CMD_NAV_WAYPOINT, s_lat, s_lon, alt, "standoff point"),
        _item(4, MAV_CMD_DO_SET_ROI_LOCATION, incident.lat, incident.lon, 0.0, "look at incident"),
    ]
    if dock.pattern == "orbit" and radius > 0.0:
        items.append(
            _item(
                5,
                MAV_CMD_NAV_LOITER_TURNS,
                incident.lat,
                incident.lon,
                alt,
                "orbit incident",
                param1=dock.orbit_turns,
                param3=radius,
            )
        )
        loiter_path = dock.orbit_turns * 2.0 * math.pi * radius
        loiter_time = loiter_path / min(dock.cruise_speed_m_s, 5.0)
    else:
        items.append(
            _item(
                5,
                MAV_CMD_NAV_LOITER_TIME,
                s_lat,
                s_lon,
                alt,
                "hover at standoff",
                param1=dock.loiter_s,
            )
        )
        loiter_path, loiter_time = 0.0, dock.loiter_s
    items.append(_item(6, MAV_CMD_NAV_RETURN_TO_LAUNCH, 0.0, 0.0, 0.0, "return to launch"))

    leg = math.hypot(*standoff)
    farthest = distance + radius if dock.pattern == "orbit" else leg
    farthest = max(farthest, leg)
    path_length = 2.0 * leg + loiter_path
    duration = 2.0 * alt / dock.climb_rate_m_s + 2.0 * leg / dock.cruise_speed_m_s + loiter_time
    sun = sun_elevation_deg(incident.lat, incident.lon, at)
    night = sun < NIGHT_SUN_ELEVATION_DEG

    checks: list[ChecklistItem] = []
    ceiling = min(EU_MAX_HEIGHT_M, rules.max_altitude_m, dock.max_altitude_m)
    _check(
        checks,
        "altitude",
        f"Height at most {ceiling:.0f} m above ground",
        alt <= ceiling,
        f"transit {alt:.0f} m",
    )
    _check(
        checks,
        "dock_range",
        f"Within the dock's range ({dock.max_range_m:.0f} m)",
        farthest <= dock.max_range_m,
        f"farthest point {farthest:.0f} m from the dock",
    )
    _check(
        checks,
        "max_distance",
        f"Within the rules' distance ({rules.max_distance_m:.0f} m)",
        farthest <= rules.max_distance_m,
        f"farthest point {farthest:.0f} m from the dock",
    )

    # Geofence: outbound leg, the orbit (or hover point), and the straight return leg.
    segments: list[tuple[Point, Point]] = [((0.0, 0.0), standoff)]
    if dock.pattern == "orbit" and radius > 0.0:
        ring = circle_points(target, radius)
        segments += [(ring[i], ring[(i + 1) % len(ring)]) for i in range(len(ring))]
    hits: list[str] = []
    for zone in zones:
        for polygon in zone.polygons:
            local = [[frame.to_en(lat, lon) for lon, lat in ring] for ring in polygon]
            outer, holes = local[0], local[1:]
            inside = point_in_polygon(target, outer, holes)
            clearance = min(segment_polygon_distance(a, b, outer, holes) for a, b in segments)
            if inside or clearance < rules.geofence_margin_m:
                hits.append(
                    f"{zone.name} ({'incident inside' if inside else f'{clearance:.0f} m'})"
                )
                break
    _check(
        checks,
        "geofence",
        f"No no-fly zone within {rules.geofence_margin_m:.0f} m of the flight path",
        not hits,
        "; ".join(hits) if hits else f"{len(zones)} zones checked",
    )

    if night:
        ok = rules.night_flight_allowed and dock.has_night_light
        why = (
            "night flight not allowed by the rules"
            if not rules.night_flight_allowed
            else "no green flashing light fitted"
            if not dock.has_night_light
            else "allowed, light fitted"
        )
        _check(checks, "night", "Night flight allowed and lit", ok, f"sun {sun:.1f}°: {why}")
    else:
        _check(checks, "night", "Daylight or civil twilight", True, f"sun {sun:.1f}°")

    _category_checks(checks, dock, rules, farthest)
    if incident.approximate:
        _declare(
            checks,
            "approximate_area",
            f"The target is an approximate area ({incident.radius_m:.0f} m radius), not a "
            "located point: the crew searches it",
        )
    for index, text in enumerate(rules.declarations):
        _declare(checks, f"declared_{index + 1}", text)

    return MissionPlan(
        mission_id=mission_id or uuid.uuid4().hex,
        incident_id=incident.id,
        dock_id=dock.id,
        planned_by=planned_by,
        planned_at=at,
        incident_lat=incident.lat,
        incident_lon=incident.lon,
        standoff_lat=s_lat,
        standoff_lon=s_lon,
        transit_altitude_m=alt,
        orbit_radius_m=radius if dock.pattern == "orbit" else 0.0,
        pattern=dock.pattern,
        distance_to_incident_m=distance,
        farthest_from_dock_m=farthest,
        path_length_m=path_length,
        estimated_duration_s=duration,
        night=night,
        sun_elevation_deg=sun,
        items=items,
        checklist=checks,
        approximate=incident.approximate,
    )


def _category_checks(
    checks: list[ChecklistItem], dock: DroneDock, rules: FlightRules, farthest: float
) -> None:
    if rules.category == "open":
        _check(
            checks,
            "category",
            "Open category: VLOS",
            farthest <= dock.vlos_m,
            f"farthest point {farthest:.0f} m, visual line of sight {dock.vlos_m:.0f} m",
        )
        _check(
            checks,
            "uas_class",
            "Open category: class C0–C4 or legacy",
            dock.uas_class in ("C0", "C1", "C2", "C3", "C4", "legacy"),
            dock.uas_class,
        )
        _declare(checks, "not_over_assemblies", "Not flown over assemblies of people")
        _declare(checks, "pilot_competency", "Remote pilot holds the Open-category certificate")
        return
    if rules.scenario == "STS-01":
        _check(
            checks,
            "category",
            "Specific STS-01: VLOS",
            farthest <= dock.vlos_m,
            f"farthest point {farthest:.0f} m, visual line of sight {dock.vlos_m:.0f} m",
        )
        _check(checks, "uas_class", "STS-01: class C5", dock.uas_class == "C5", dock.uas_class)
        _declare(
            checks,
            "controlled_ground_area",
            "Controlled ground area established (populated environment)",
        )
        _declare(
            checks,
            "pilot_competency",
            "Remote pilot holds the STS theoretical and practical certificates",
        )
    elif rules.scenario == "STS-02":
        limit = 2000.0 if dock.airspace_observers else 1000.0
        _check(
            checks,
            "category",
            f"Specific STS-02: BVLOS within {limit / 1000:.0f} km",
            farthest <= limit,
            f"farthest point {farthest:.0f} m"
            + (", with airspace observers" if dock.airspace_observers else ""),
        )
        _check(checks, "uas_class", "STS-02: class C6", dock.uas_class == "C6", dock.uas_class)
        _declare(
            checks,
            "controlled_ground_area",
            "Controlled ground area established (sparsely populated environment)",
        )
        _declare(
            checks,
            "pilot_competency",
            "Remote pilot holds the STS theoretical and practical certificates",
        )
        if farthest > 1000.0:
            _declare(checks, "airspace_observers", "Airspace observers in place")
    else:
        _check(
            checks,
            "category",
            "Specific category under an operational authorisation",
            bool(rules.authorisation_ref),
            rules.authorisation_ref,
        )
        _declare(
            checks,
            "authorisation_conditions",
            f"Conditions of authorisation {rules.authorisation_ref} are met",
        )
        _declare(checks, "pilot_competency", "Remote pilot competency per the authorisation")
    _check(
        checks,
        "registration",
        "UAS operator registration on file",
        bool(rules.operator_registration),
        rules.operator_registration or "missing",
    )
