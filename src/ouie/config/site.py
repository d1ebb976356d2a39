"""Site plan files: ``site.yaml`` (origin, sensors, cameras, drone docks) and its GeoJSON.

A site directory holds ``site.yaml`` (id, origin, sensors, cameras, drone docks, and the
name of the GeoJSON file) and that GeoJSON ``FeatureCollection``. Every feature carries
``properties.kind`` — ``street`` (LineString, ``width_m``), ``square`` (Polygon),
``building`` (Polygon, ``height_m``) or ``zone`` (Polygon, drawn by the console) — and an
optional ``name``; free-form extra data goes in ``properties.tags``. Unknown keys anywhere
are errors, so a misspelt ``heigth_m`` cannot be silently ignored.

This module only reads and validates the files; it sits low in the layers because two
packages read them: the digital twin (``ouie.sim.site`` builds the acoustic scene in local
metres) and the console (``ouie.web.geo`` draws streets, squares and zones). The cameras and
drone docks listed here are the twin's; the deployed ones are the hub's registry
(``verify.yaml``, ``ouie.hub.equipment``). Bundled sites live in ``ouie/sites/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from ouie.config.loader import ConfigError, describe_validation_error, read_yaml
from ouie.core.messages import SensorId, SiteId
from ouie.core.model_base import StrictModel

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


# --- loading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteFiles:
    """A validated ``site.yaml`` and its GeoJSON, with where they came from."""

    spec: SiteSpec
    features: FeatureCollection
    source: str  # the site directory, for reports


def _validate(model: type[StrictModel], data: Any, source: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from exc


def read_site(path: Path) -> SiteFiles:
    """Read a site from its directory or its ``site.yaml``."""
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
    return SiteFiles(spec, features, str(yaml_path.parent))


def bundled_site_dir(name: str = BUNDLED_SITE) -> Path:
    return Path(str(resources.files("ouie") / "sites" / name))


def bundled_site_names() -> list[str]:
    root = Path(str(resources.files("ouie") / "sites"))
    return sorted(p.name for p in root.iterdir() if (p / "site.yaml").is_file())


def find_site(name_or_path: str | Path | None) -> SiteFiles:
    """A bundled site by name (the default one for None), or a site directory / ``site.yaml``."""
    if name_or_path is None:
        return read_site(bundled_site_dir())
    candidate = Path(name_or_path)
    if candidate.exists():
        return read_site(candidate)
    if str(name_or_path) in bundled_site_names():
        return read_site(bundled_site_dir(str(name_or_path)))
    raise ConfigError(
        f"site {name_or_path!s} is neither a directory nor a bundled site "
        f"({', '.join(bundled_site_names())})"
    )
