"""Mission planning and the pre-flight checklist."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ouie.config.drones import DroneDock, FlightRules
from ouie.core.geometry import LocalFrame, bearing_distance
from ouie.verify.drone import (
    MAV_CMD_DO_SET_ROI_LOCATION,
    MAV_CMD_NAV_LOITER_TIME,
    MAV_CMD_NAV_LOITER_TURNS,
    MAV_CMD_NAV_RETURN_TO_LAUNCH,
    MAV_CMD_NAV_TAKEOFF,
    MAV_CMD_NAV_WAYPOINT,
    GeofenceError,
    MissionPlan,
    parse_no_fly_zones,
    plan_mission,
)
from tests.verify.conftest import ORIGIN, incident_at

FRAME = LocalFrame(*ORIGIN)
NOON = datetime(2026, 6, 21, 12, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 6, 21, 23, 30, tzinfo=UTC)


def dock(**changes: Any) -> DroneDock:
    base: dict[str, Any] = {
        "id": "dock-1",
        "lat": ORIGIN[0],
        "lon": ORIGIN[1],
        "connection": "udpout:127.0.0.1:1",
    }
    base.update(changes)
    return DroneDock.model_validate(base)


def rules(**changes: Any) -> FlightRules:
    base: dict[str, Any] = {"operator_registration": "FRA-OP-1"}
    base.update(changes)
    return FlightRules.model_validate(base)


def plan(
    east: float,
    north: float,
    *,
    d: DroneDock | None = None,
    r: FlightRules | None = None,
    zones: list[Any] | None = None,
    at: datetime = NOON,
) -> MissionPlan:
    lat, lon = FRAME.to_latlon(east, north)
    return plan_mission(
        d or dock(), incident_at(lat, lon), r or rules(), zones or [], planned_by="op", at=at
    )


def status(p: MissionPlan, check: str) -> str:
    return next(c.status for c in p.checklist if c.id == check)


def test_mission_shape() -> None:
    p = plan(300.0, 400.0)  # 500 m away
    commands = [i.command for i in p.items]
    assert commands == [
        MAV_CMD_NAV_WAYPOINT,
        MAV_CMD_NAV_TAKEOFF,
        178,
        MAV_CMD_NAV_WAYPOINT,
        MAV_CMD_DO_SET_ROI_LOCATION,
        MAV_CMD_NAV_LOITER_TURNS,
        MAV_CMD_NAV_RETURN_TO_LAUNCH,
    ]
    assert [i.seq for i in p.items] == list(range(7))
    takeoff, standoff, orbit = p.items[1], p.items[3], p.items[5]
    assert takeoff.alt_m == 60.0 and standoff.alt_m == 60.0
    # The standoff point is 40 m short of the incident, on the line from the dock.
    bearing, dist = bearing_distance(ORIGIN[0], ORIGIN[1], standoff.lat, standoff.lon)
    assert dist == pytest.approx(460.0, abs=0.05)
    assert bearing == pytest.approx(36.87, abs=0.01)
    assert (orbit.lat, orbit.lon) == (p.incident_lat, p.incident_lon)
    assert orbit.param1 == 3.0 and orbit.param3 == 40.0
    assert p.farthest_from_dock_m == pytest.approx(540.0, abs=0.1)
    assert p.sendable
    assert set(p.declared_items) == {"controlled_ground_area", "pilot_competency"}
    assert len(p.digest()) == 64 and p.digest() == p.model_copy().digest()


def test_an_approximate_area_is_orbited_at_its_edge_and_declared() -> None:
    lat, lon = FRAME.to_latlon(300.0, 400.0)
    area = incident_at(lat, lon, radius_m=120.0).model_copy(update={"approximate": True})
    p = plan_mission(dock(), area, rules(), [], planned_by="op", at=NOON)
    assert p.approximate and p.items[5].param3 == 120.0  # the orbit runs round the area
    assert "approximate_area" in p.declared_items  # the crew confirms it searches an area
    assert "approximate" in next(c.text for c in p.checklist if c.id == "approximate_area")
    exact = plan(300.0, 400.0)
    assert not exact.approximate and "approximate_area" not in exact.declared_items


def test_hover_pattern() -> None:
    p = plan(0.0, 200.0, d=dock(pattern="hover", loiter_s=90.0))
    hover = p.items[5]
    assert hover.command == MAV_CMD_NAV_LOITER_TIME and hover.param1 == 90.0
    assert (hover.lat, hover.lon) == (p.standoff_lat, p.standoff_lon)


def test_altitude_and_distance_limits() -> None:
    high = dock(max_altitude_m=200.0, transit_altitude_m=130.0)
    p = plan(100.0, 0.0, d=high)
    assert status(p, "altitude") == "fail" and not p.sendable
    assert (
        status(
            plan(100.0, 0.0, d=dock(transit_altitude_m=100.0), r=rules(max_altitude_m=80.0)),
            "altitude",
        )
        == "fail"
    )
    far = plan(0.0, 1200.0)
    assert status(far, "dock_range") == "fail"
    assert (
        status(
            plan(0.0, 1200.0, d=dock(max_range_m=5000.0), r=rules(max_distance_m=1000.0)),
            "max_distance",
        )
        == "fail"
    )
    with pytest.raises(ValueError, match="120"):
        rules(max_altitude_m=150.0)


def _zone(name: str, corners: list[tuple[float, float]]) -> dict[str, Any]:
    ring = [list(reversed(FRAME.to_latlon(e, n))) for e, n in corners]
    ring.append(ring[0])
    return {
        "type": "Feature",
        "properties": {"name": name},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def test_geofence_crossing_inside_and_margin() -> None:
    hospital = _zone("hospital", [(-50, 150), (50, 150), (50, 250), (-50, 250)])
    zones = parse_no_fly_zones({"type": "FeatureCollection", "features": [hospital]})
    crossing = plan(0.0, 500.0, zones=zones)  # the straight leg passes through it
    assert status(crossing, "geofence") == "fail"
    assert "hospital" in next(c.detail for c in crossing.checklist if c.id == "geofence")
    assert not crossing.sendable
    assert status(plan(0.0, 200.0, zones=zones), "geofence") == "fail"  # incident inside
    beside = plan(200.0, 200.0, zones=zones)  # leg and orbit stay clear by > 20 m
    assert status(beside, "geofence") == "pass"
    near = plan(200.0, 500.0, zones=zones)  # leg passes 9.3 m from the corner (50, 150)
    assert status(near, "geofence") == "fail"
    assert "9 m" in next(c.detail for c in near.checklist if c.id == "geofence")
    assert (
        status(plan(200.0, 500.0, zones=zones, r=rules(geofence_margin_m=5.0)), "geofence")
        == "pass"
    )


def test_multipolygon_with_hole_and_bad_geojson() -> None:
    outer = [(-100, 100), (100, 100), (100, 300), (-100, 300)]
    hole = [(-30, 170), (30, 170), (30, 230), (-30, 230)]
    ring = [list(reversed(FRAME.to_latlon(e, n))) for e, n in outer]
    hole_ring = [list(reversed(FRAME.to_latlon(e, n))) for e, n in hole]
    multi = {"type": "MultiPolygon", "coordinates": [[ring, hole_ring]]}
    (zone,) = parse_no_fly_zones(multi)
    assert len(zone.polygons) == 1 and len(zone.polygons[0]) == 2
    with pytest.raises(GeofenceError):
        parse_no_fly_zones({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]})


def test_night_flight() -> None:
    assert status(plan(0.0, 200.0, at=NOON), "night") == "pass"
    night = plan(0.0, 200.0, at=MIDNIGHT)
    assert night.night and status(night, "night") == "fail"
    allowed = plan(0.0, 200.0, at=MIDNIGHT, r=rules(night_flight_allowed=True))
    assert status(allowed, "night") == "pass"
    unlit = plan(
        0.0, 200.0, at=MIDNIGHT, r=rules(night_flight_allowed=True), d=dock(has_night_light=False)
    )
    assert status(unlit, "night") == "fail"


def test_eu_categories() -> None:
    sts02 = plan(0.0, 1100.0, d=dock(max_range_m=3000.0))
    assert status(sts02, "category") == "fail"  # > 1 km without airspace observers
    observers = plan(0.0, 1100.0, d=dock(max_range_m=3000.0, airspace_observers=True))
    assert status(observers, "category") == "pass"
    assert "airspace_observers" in observers.declared_items
    open_rules = rules(category="open", scenario="none", operation="VLOS")
    assert status(plan(0.0, 300.0, d=dock(uas_class="C2"), r=open_rules), "category") == "pass"
    beyond = plan(0.0, 700.0, d=dock(uas_class="C2"), r=open_rules)
    assert status(beyond, "category") == "fail"  # beyond VLOS in Open
    assert status(plan(0.0, 300.0, r=open_rules), "uas_class") == "fail"  # C6 is not Open
    sts01 = rules(scenario="STS-01", operation="VLOS")
    assert status(plan(0.0, 300.0, d=dock(uas_class="C5"), r=sts01), "uas_class") == "pass"
    with pytest.raises(ValueError, match="BVLOS"):
        rules(scenario="STS-02", operation="VLOS")
    with pytest.raises(ValueError, match="authorisation_ref"):
        rules(scenario="authorisation")
    auth = rules(scenario="authorisation", authorisation_ref="DSAC-2026-42")
    p = plan(0.0, 300.0, r=auth)
    assert status(p, "category") == "pass" and "authorisation_conditions" in p.declared_items
    assert status(plan(0.0, 300.0, r=rules(operator_registration="")), "registration") == "fail"
    extra = plan(0.0, 300.0, r=rules(declarations=["Prefecture informed"]))
    assert "declared_1" in extra.declared_items
