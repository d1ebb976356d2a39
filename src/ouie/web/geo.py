"""What the map draws from files: the site plan (GeoJSON) and the zones.

The site plan comes from ``web.site`` (a bundled site name or a site directory, read by
``ouie.config.site``); sensors always come from the hub's registry (the database), so a
sensor added with ``ouie sensor add`` appears without touching any file, and cameras and
drone docks from the hub's equipment registry (``verify.yaml``, ``ouie.hub.equipment``),
never from the site plan. Zones are the declared listening zone of ``compliance.zone`` plus
any ``kind: zone`` polygon of the site plan; an incident's zone is the first one that
contains it (a point on a zone's edge is in it, as for ``ouie check``), else the site
itself. The public page never shows anything finer than a zone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ouie.config.loader import ConfigError
from ouie.config.site import find_site
from ouie.core.geometry import point_in_polygon, validate_polygon

log = logging.getLogger(__name__)

LatLon = tuple[float, float]


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: tuple[LatLon, ...]  # (lat, lon), open or closed outer ring
    holes: tuple[tuple[LatLon, ...], ...] = ()

    def contains(self, lat: float, lon: float) -> bool:
        return point_in_polygon((lat, lon), self.polygon, self.holes)


@dataclass(frozen=True)
class SitePlan:
    site_id: str | None
    name: str
    features: dict[str, Any]  # a GeoJSON FeatureCollection (streets, squares, buildings, zones)
    zones: tuple[Zone, ...]
    origin: LatLon | None

    def zone_of(self, lat: float, lon: float, site: str) -> str:
        for zone in self.zones:
            if zone.contains(lat, lon):
                return zone.name
        return site

    def zone_names(self, sites: list[str]) -> list[str]:
        names = [z.name for z in self.zones]
        return names + [s for s in sites if s not in names]


EMPTY_PLAN = SitePlan(None, "", {"type": "FeatureCollection", "features": []}, (), None)


def _latlon_ring(ring: Sequence[Sequence[float]]) -> tuple[LatLon, ...]:
    return tuple((float(p[1]), float(p[0])) for p in ring)  # GeoJSON is [lon, lat]


def _usable(zone: Zone, source: str) -> bool:
    # A degenerate zone is skipped with a warning here, at start-up, rather than failing
    # every page that asks which zone an incident is in.
    try:
        validate_polygon(zone.polygon, zone.holes)
    except ValueError as exc:
        log.warning("web: zone %r of %s ignored: %s", zone.name, source, exc)
        return False
    return True


def _zones_from_features(features: dict[str, Any], source: str) -> list[Zone]:
    zones: list[Zone] = []
    for feature in features.get("features", []):
        props = feature.get("properties") or {}
        geometry = feature.get("geometry") or {}
        if props.get("kind") != "zone":
            continue
        polygons: list[list[list[list[float]]]] = []
        if geometry.get("type") == "Polygon":
            polygons = [geometry["coordinates"]]
        elif geometry.get("type") == "MultiPolygon":
            polygons = list(geometry["coordinates"])
        for rings in polygons:
            zone = Zone(
                str(props.get("name") or "zone"),
                _latlon_ring(rings[0]),
                tuple(_latlon_ring(hole) for hole in rings[1:]),
            )
            if _usable(zone, source):
                zones.append(zone)
    return zones


@lru_cache(maxsize=8)
def _load(site: str) -> SitePlan:
    files = find_site(site)
    features = files.features.model_dump(mode="json", exclude_none=True)
    return SitePlan(
        site_id=files.spec.site_id,
        name=files.spec.name,
        features=features,
        zones=tuple(_zones_from_features(features, files.source)),
        origin=(files.spec.origin.lat, files.spec.origin.lon),
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
        if _usable(zone, "compliance.zone"):
            plan = SitePlan(
                plan.site_id,
                plan.name or zone.name,
                plan.features,
                (zone, *plan.zones),
                plan.origin,
            )
    return plan
