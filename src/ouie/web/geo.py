"""What the map draws: the site plan (GeoJSON), zones, cameras and drone docks.

The site plan comes from ``web.site`` (a bundled site name or a site directory); sensors
always come from the hub's registry (the database), so a sensor added with
``ouie sensor add`` appears without touching any file. Zones are the declared listening
zone of ``compliance.zone`` plus any ``kind: zone`` polygon of the site plan; an incident's
zone is the first one that contains it, else the site itself. The public page never shows
anything finer than a zone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ouie.config.loader import ConfigError

log = logging.getLogger(__name__)

LatLon = tuple[float, float]


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: tuple[LatLon, ...]  # (lat, lon), open or closed ring

    def contains(self, lat: float, lon: float) -> bool:
        return point_in_polygon(lat, lon, self.polygon)


@dataclass(frozen=True)
class Equipment:
    kind: str  # "camera" | "dock"
    id: str
    lat: float
    lon: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SitePlan:
    site_id: str | None
    name: str
    features: dict[str, Any]  # a GeoJSON FeatureCollection (streets, squares, buildings, zones)
    zones: tuple[Zone, ...]
    cameras: tuple[Equipment, ...]
    docks: tuple[Equipment, ...]
    origin: LatLon | None

    def zone_of(self, lat: float, lon: float, site: str) -> str:
        for zone in self.zones:
            if zone.contains(lat, lon):
                return zone.name
        return site

    def zone_names(self, sites: list[str]) -> list[str]:
        names = [z.name for z in self.zones]
        return names + [s for s in sites if s not in names]


EMPTY_PLAN = SitePlan(None, "", {"type": "FeatureCollection", "features": []}, (), (), (), None)


def point_in_polygon(lat: float, lon: float, polygon: tuple[LatLon, ...] | list[LatLon]) -> bool:
    """Ray casting on (lat, lon) pairs; fine for zones of a few kilometres."""
    inside = False
    n = len(polygon)
    if n < 3:
        return False
    j = n - 1
    for i in range(n):
        yi, xi = polygon[i]
        yj, xj = polygon[j]
        if (yi > lat) != (yj > lat):
            x_cross = (xj - xi) * (lat - yi) / (yj - yi) + xi
            if lon < x_cross:
                inside = not inside
        j = i
    return inside


def _zones_from_features(features: dict[str, Any]) -> list[Zone]:
    zones: list[Zone] = []
    for feature in features.get("features", []):
        props = feature.get("properties") or {}
        geometry = feature.get("geometry") or {}
        if props.get("kind") != "zone":
            continue
        rings: list[list[list[float]]] = []
        if geometry.get("type") == "Polygon":
            rings = [geometry["coordinates"][0]]
        elif geometry.get("type") == "MultiPolygon":
            rings = [polygon[0] for polygon in geometry["coordinates"]]
        for ring in rings:
            zones.append(Zone(str(props.get("name") or "zone"), tuple((p[1], p[0]) for p in ring)))
    return zones


@lru_cache(maxsize=8)
def _load(site: str) -> SitePlan:
    from ouie.sim.site import resolve_site

    loaded = resolve_site(site)
    features = loaded.features.model_dump(mode="json", exclude_none=True)
    cameras = tuple(
        Equipment(
            "camera",
            c.id,
            c.lat,
            c.lon,
            {"heading_deg": c.heading_deg, "fov_deg": c.fov_deg, "range_m": c.range_m},
        )
        for c in loaded.spec.cameras
    )
    docks = tuple(Equipment("dock", d.id, d.lat, d.lon) for d in loaded.spec.drone_docks)
    return SitePlan(
        site_id=loaded.site_id,
        name=loaded.spec.name,
        features=features,
        zones=tuple(_zones_from_features(features)),
        cameras=cameras,
        docks=docks,
        origin=(loaded.spec.origin.lat, loaded.spec.origin.lon),
    )


def load_plan(site: str | None, declared_zone: Any = None) -> SitePlan:
    """The site plan named by ``web.site`` plus the declared zone (``compliance.zone``)."""
    plan = EMPTY_PLAN
    if site:
        try:
            plan = _load(site)
        except (ConfigError, OSError, ValueError) as exc:
            log.warning("web: cannot load site plan %r: %s", site, exc)
    if declared_zone is not None:
        polygon = tuple((float(lat), float(lon)) for lat, lon in declared_zone.polygon)
        zone = Zone(str(declared_zone.name), polygon)
        plan = SitePlan(
            plan.site_id,
            plan.name or zone.name,
            plan.features,
            (zone, *plan.zones),
            plan.cameras,
            plan.docks,
            plan.origin,
        )
    return plan
