"""A site as the twin hears it: building footprints, streets and squares in local metres.

The files (``site.yaml`` and its GeoJSON) are read and validated by ``ouie.config.site``;
this module turns them into the acoustic scene, in the site's ``LocalFrame`` around its
origin. Inner rings (courtyards) of building polygons are ignored by the acoustics.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ouie.config.loader import ConfigError
from ouie.config.site import (
    FeatureCollection,
    LineStringGeometry,
    MultiLineStringGeometry,
    PolygonGeometry,
    Position,
    SensorSpec,
    SiteSpec,
    find_site,
    read_site,
)
from ouie.core.geometry import LocalFrame, Point, validate_polygon

# --- the loaded site, in local metres ----------------------------------------------------

DEFAULT_BUILDING_HEIGHT_M = 15.0
DEFAULT_STREET_WIDTH_M = 10.0


@dataclass(frozen=True)
class Building:
    name: str
    outline: tuple[Point, ...]  # local metres, open ring
    height_m: float


@dataclass(frozen=True)
class Street:
    name: str
    line: tuple[Point, ...]
    width_m: float


@dataclass(frozen=True)
class Square:
    name: str
    outline: tuple[Point, ...]


@dataclass(frozen=True)
class Site:
    spec: SiteSpec
    features: FeatureCollection
    buildings: tuple[Building, ...]
    streets: tuple[Street, ...]
    squares: tuple[Square, ...]
    source: str  # where it was loaded from, for reports

    @property
    def site_id(self) -> str:
        return self.spec.site_id

    @cached_property
    def frame(self) -> LocalFrame:
        return LocalFrame(self.spec.origin.lat, self.spec.origin.lon)

    @property
    def sensors(self) -> list[SensorSpec]:
        return self.spec.sensors

    @cached_property
    def sensor_xyz(self) -> npt.NDArray[np.float64]:
        """[n_sensors, 3] local east/north/up metres."""
        rows = [(*self.frame.to_en(s.lat, s.lon), s.height_m) for s in self.spec.sensors]
        return np.asarray(rows, dtype=np.float64)

    def to_xy(self, lat: float, lon: float) -> Point:
        return self.frame.to_en(lat, lon)

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        return self.frame.to_latlon(x, y)

    def street(self, name: str) -> Street:
        for street in self.streets:
            if street.name == name:
                return street
        known = ", ".join(s.name for s in self.streets)
        raise KeyError(f"site {self.site_id} has no street {name!r} (streets: {known})")

    def bounds(self) -> tuple[float, float, float, float]:
        """(min_x, min_y, max_x, max_y) over sensors and features, local metres."""
        points: list[Point] = [(float(x), float(y)) for x, y, _ in self.sensor_xyz]
        for b in self.buildings:
            points.extend(b.outline)
        for s in self.streets:
            points.extend(s.line)
        for q in self.squares:
            points.extend(q.outline)
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        return min(xs), min(ys), max(xs), max(ys)


def _ring(frame: LocalFrame, ring: list[Position], name: str) -> tuple[Point, ...]:
    points = [frame.to_en(lat, lon) for lon, lat in ring]
    if len(points) > 1 and points[0] == points[-1]:
        points = points[:-1]
    try:  # here, not in the acoustics: a bad footprint is the site file's error
        validate_polygon(points)
    except ValueError as exc:
        raise ConfigError(f"polygon {name or '(unnamed)'}: {exc}") from exc
    return tuple(points)


def build_site(spec: SiteSpec, features: FeatureCollection, source: str) -> Site:
    frame = LocalFrame(spec.origin.lat, spec.origin.lon)
    buildings: list[Building] = []
    streets: list[Street] = []
    squares: list[Square] = []
    for feature in features.features:
        props, geometry = feature.properties, feature.geometry
        if isinstance(geometry, LineStringGeometry | MultiLineStringGeometry):
            lines = (
                [geometry.coordinates]
                if isinstance(geometry, LineStringGeometry)
                else geometry.coordinates
            )
            for line in lines:
                streets.append(
                    Street(
                        props.name,
                        tuple(frame.to_en(lat, lon) for lon, lat in line),
                        props.width_m or DEFAULT_STREET_WIDTH_M,
                    )
                )
            continue
        polygons = (
            [geometry.coordinates]
            if isinstance(geometry, PolygonGeometry)
            else geometry.coordinates
        )
        for rings in polygons:
            outline = _ring(frame, rings[0], props.name)
            if props.kind == "building":
                height = props.height_m or DEFAULT_BUILDING_HEIGHT_M
                buildings.append(Building(props.name, outline, height))
            elif props.kind == "square":
                squares.append(Square(props.name, outline))
    return Site(spec, features, tuple(buildings), tuple(streets), tuple(squares), source)


def load_site(path: Path) -> Site:
    """Load a site from its directory or its ``site.yaml``."""
    files = read_site(path)
    return build_site(files.spec, files.features, files.source)


def resolve_site(name_or_path: str | Path | None) -> Site:
    """A bundled site by name, or a user's site directory / ``site.yaml``."""
    files = find_site(name_or_path)
    return build_site(files.spec, files.features, files.source)
