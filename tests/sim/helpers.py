"""Small sites built in code, so physics tests know every distance exactly."""

from __future__ import annotations

from ouie.config.site import FeatureCollection, GeoPoint, SensorSpec, SiteSpec
from ouie.core.geometry import LocalFrame
from ouie.sim.site import Site, build_site

ORIGIN = (45.44, 4.387)


def site_with(
    sensors_xyz: list[tuple[float, float, float]],
    buildings: list[tuple[list[tuple[float, float]], float]] | None = None,
) -> Site:
    """A site with sensors at local ``(x, y, height)`` and building footprints ``(outline, h)``."""
    frame = LocalFrame(*ORIGIN)
    specs = []
    for i, (x, y, h) in enumerate(sensors_xyz):
        lat, lon = frame.to_latlon(x, y)
        specs.append(SensorSpec(id=f"s{i}", lat=lat, lon=lon, height_m=h))
    features = []
    for j, (outline, height) in enumerate(buildings or []):
        ring = [list(reversed(frame.to_latlon(x, y))) for x, y in outline]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                "properties": {"kind": "building", "name": f"b{j}", "height_m": height},
            }
        )
    spec = SiteSpec(
        site_id="test",
        name="test",
        origin=GeoPoint(lat=ORIGIN[0], lon=ORIGIN[1]),
        sensors=specs,
    )
    collection = FeatureCollection.model_validate(
        {"type": "FeatureCollection", "features": features}
    )
    return build_site(spec, collection, "tests")
