"""A site: streets, squares and building footprints (GeoJSON) plus a sensor layout (YAML).

A site directory holds ``site.yaml`` (id, origin, sensors, cameras, drone docks, and the
name of the GeoJSON file) and that GeoJSON ``FeatureCollection``. Every feature carries
``properties.kind`` — ``street`` (LineString, ``width_m``), ``square`` (Polygon) or
``building`` (Polygon, ``height_m``) — and an optional ``name``; free-form extra data goes in
``properties.tags``. Unknown keys anywhere are errors, so a misspelt ``heigth_m`` cannot be
silently ignored. Inner rings (courtyards) of building polygons are ignored by the acoustics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field, ValidationError, model_validator

from ouie.config.loader import ConfigError, describe_validation_error, read_yaml
from ouie.core.messages import SensorId, SiteId
from ouie.core.model_base import StrictModel
from ouie.sim.geo import LocalFrame
from ouie.sim.geometry import Point

Latitude = Annotated[float, Field(ge=-90.0, le=90.0)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0)]
Position = tuple[float, float]  # GeoJSON order: (lon, lat)

BUNDLED_SITE = "saint-etienne"


class GeoPoint(StrictModel):
    lat: Latitude
    lon: Longitude


class SensorSpec(StrictModel):
    id: SensorId
    lat: Latitude
    lon: Longitude
    height_m: float = Field(default=4.5, ge=0.0, le=100.0, description="microphone above ground")
    mounting: str = Field(default="lamp_post", max_length=64)
    sensitivity_dbfs: float = Field(
        default=-26.0, le=0.0, ge=-80.0, description="RMS dBFS of a 94 dB SPL tone"
    )

    @property
    def calibration_db_spl(self) -> float:
        """dB SPL that reads as 0 dBFS (RMS): what the node adds to dBFS to report dB SPL."""
        return 94.0 - self.sensitivity_dbfs


class CameraSpec(StrictModel):
    id: SensorId
    lat: Latitude
    lon: Longitude
    height_m: float = Field(default=6.0, ge=0.0, le=200.0)
    heading_deg: float = Field(default=0.0, ge=0.0, lt=360.0, description="0 = north, clockwise")
    fov_deg: float = Field(default=90.0, gt=0.0, le=360.0)
    range_m: float = Field(default=80.0, gt=0.0)
    ptz: bool = True


class DroneDockSpec(StrictModel):
    id: SensorId
    lat: Latitude
    lon: Longitude
    height_m: float = Field(default=20.0, ge=0.0, le=300.0)


class SiteSpec(StrictModel):
    """``site.yaml``."""

    site_id: SiteId
    name: str = Field(max_length=200)
    description: str = ""
    origin: GeoPoint = Field(description="centre of the local metric frame")
    geometry: str = Field(default="site.geojson", description="GeoJSON file beside site.yaml")
    sensors: list[SensorSpec] = Field(min_length=1)
    cameras: list[CameraSpec] = Field(default_factory=list)
    drone_docks: list[DroneDockSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> SiteSpec:
        ids = [s.id for s in self.sensors] + [c.id for c in self.cameras]
        ids += [d.id for d in self.drone_docks]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate ids: {', '.join(duplicates)}")
        return self


# --- GeoJSON -----------------------------------------------------------------------------


class FeatureProperties(StrictModel):
    kind: Literal["street", "square", "building", "zone"]
    name: str = ""
    height_m: float | None = Field(default=None, gt=0.0, le=500.0, description="buildings")
    width_m: float | None = Field(default=None, gt=0.0, le=200.0, description="streets")
    tags: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class LineStringGeometry(StrictModel):
    type: Literal["LineString"]
    coordinates: list[Position] = Field(min_length=2)


class MultiLineStringGeometry(StrictModel):
    type: Literal["MultiLineString"]
    coordinates: list[list[Position]] = Field(min_length=1)


class PolygonGeometry(StrictModel):
    type: Literal["Polygon"]
    coordinates: list[list[Position]] = Field(min_length=1)


class MultiPolygonGeometry(StrictModel):
    type: Literal["MultiPolygon"]
    coordinates: list[list[list[Position]]] = Field(min_length=1)


Geometry = Annotated[
    LineStringGeometry | MultiLineStringGeometry | PolygonGeometry | MultiPolygonGeometry,
    Field(discriminator="type"),
]


class Feature(StrictModel):
    type: Literal["Feature"]
    id: str | int | None = None
    geometry: Geometry
    properties: FeatureProperties

    @model_validator(mode="after")
    def _kind_matches_geometry(self) -> Feature:
        lines = isinstance(self.geometry, LineStringGeometry | MultiLineStringGeometry)
        if self.properties.kind == "street" and not lines:
            raise ValueError("a street must be a LineString or MultiLineString")
        if self.properties.kind != "street" and lines:
            raise ValueError(f"a {self.properties.kind} must be a Polygon or MultiPolygon")
        return self


class FeatureCollection(StrictModel):
    type: Literal["FeatureCollection"]
    name: str | None = None
    features: list[Feature]


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
        rows = [(*self.frame.to_xy(s.lat, s.lon), s.height_m) for s in self.spec.sensors]
        return np.asarray(rows, dtype=np.float64)

    def to_xy(self, lat: float, lon: float) -> Point:
        return self.frame.to_xy(lat, lon)

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


def _ring(frame: LocalFrame, ring: list[Position]) -> tuple[Point, ...]:
    points = [frame.to_xy(lat, lon) for lon, lat in ring]
    if len(points) > 1 and points[0] == points[-1]:
        points = points[:-1]
    if len(points) < 3:
        raise ConfigError("a polygon ring needs at least three distinct points")
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
                        tuple(frame.to_xy(lat, lon) for lon, lat in line),
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
            outline = _ring(frame, rings[0])
            if props.kind == "building":
                height = props.height_m or DEFAULT_BUILDING_HEIGHT_M
                buildings.append(Building(props.name, outline, height))
            elif props.kind == "square":
                squares.append(Square(props.name, outline))
    return Site(spec, features, tuple(buildings), tuple(streets), tuple(squares), source)


def _validate(model: type[StrictModel], data: Any, source: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from exc


def load_site(path: Path) -> Site:
    """Load a site from its directory or its ``site.yaml``."""
    yaml_path = path / "site.yaml" if path.is_dir() else path
    spec: SiteSpec = _validate(SiteSpec, read_yaml(yaml_path), str(yaml_path))
    geojson_path = yaml_path.parent / spec.geometry
    if not geojson_path.is_file():
        raise ConfigError(f"{yaml_path}: geometry file {geojson_path} does not exist")
    try:
        raw = json.loads(geojson_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{geojson_path} is not valid JSON: {exc}") from exc
    features: FeatureCollection = _validate(FeatureCollection, raw, str(geojson_path))
    return build_site(spec, features, str(yaml_path.parent))


def bundled_site_dir(name: str = BUNDLED_SITE) -> Path:
    root = resources.files("ouie.sim") / "sites" / name
    return Path(str(root))


def bundled_site_names() -> list[str]:
    root = Path(str(resources.files("ouie.sim") / "sites"))
    return sorted(p.name for p in root.iterdir() if (p / "site.yaml").is_file())


def resolve_site(name_or_path: str | Path | None) -> Site:
    """A bundled site by name, or a user's site directory / ``site.yaml``."""
    if name_or_path is None:
        return load_site(bundled_site_dir())
    candidate = Path(name_or_path)
    if candidate.exists():
        return load_site(candidate)
    if str(name_or_path) in bundled_site_names():
        return load_site(bundled_site_dir(str(name_or_path)))
    raise ConfigError(
        f"site {name_or_path!s} is neither a directory nor a bundled site "
        f"({', '.join(bundled_site_names())})"
    )
