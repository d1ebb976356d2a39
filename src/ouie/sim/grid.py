"""A synthetic city grid for scale runs (``ouie sim run --sensors N``).

Streets every 100 m in both directions (12 m wide), 88 m square blocks of 18 m buildings,
and lamp-post sensors every 50 m along the streets (at intersections and mid-block), so
every point is within ~35 m of a sensor, like the bundled site. A scenario written for
another site is *replanted* on the grid: one copy of its timeline per 64 sensors, each
keeping its classes, levels, sources and relative geometry, anchored at a random street
point and shifted in time at random within the scenario; copies that play at the same time
are anchored at least 600 m apart where the grid allows, so the hub does not merge them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ouie.config.site import FeatureCollection, GeoPoint, SensorSpec, SiteSpec
from ouie.core.geometry import LocalFrame
from ouie.sim.scenario import XY, EventSpec, ScenarioSpec, event_positions
from ouie.sim.site import Site, build_site

BLOCK_M = 100.0
STREET_M = 12.0
SENSOR_SPACING_M = 50.0
SENSORS_PER_COPY = 64
SEPARATION_M = 600.0  # copies playing at the same time start at least this far apart
HEARING_S = 10.0  # the hub joins repeats within its update window; keep copies apart longer
ORIGIN = (45.44, 4.387)


def grid_site(n_sensors: int, site_id: str = "grid") -> Site:
    """About ``n_sensors`` sensors (exactly, trimmed) on a square street grid."""
    if n_sensors < 1:
        raise ValueError("a grid needs at least one sensor")
    cells = max(1, math.ceil(math.sqrt(n_sensors / 3.0)))
    frame = LocalFrame(*ORIGIN)
    half = cells * BLOCK_M / 2.0
    points: list[tuple[float, float]] = []
    steps = int(cells * BLOCK_M / SENSOR_SPACING_M) + 1
    for i in range(steps):
        for j in range(steps):
            if i % 2 and j % 2:
                continue  # mid-block: inside a building
            points.append((i * SENSOR_SPACING_M - half, j * SENSOR_SPACING_M - half))
    points.sort(key=lambda p: (max(abs(p[0]), abs(p[1])), p))  # grow from the centre
    sensors = []
    for k, (x, y) in enumerate(points[:n_sensors]):
        lat, lon = frame.to_latlon(x + 3.0, y + 3.0)  # lamp posts at the kerb
        sensors.append(SensorSpec(id=f"g{k:05d}", lat=lat, lon=lon, height_m=4.5))
    features: list[dict[str, Any]] = []

    def lonlat(x: float, y: float) -> list[float]:
        lat, lon = frame.to_latlon(x, y)
        return [round(lon, 7), round(lat, 7)]

    for i in range(cells + 1):
        c = i * BLOCK_M - half
        for name, a, b in (
            (f"Avenue {i + 1}", (c, -half), (c, half)),
            (
                f"Rue {i + 1}",
                (-half, c),
                (half, c),
            ),
        ):
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "LineString", "coordinates": [lonlat(*a), lonlat(*b)]},
                    "properties": {"kind": "street", "name": name, "width_m": STREET_M},
                }
            )
    inset = STREET_M / 2.0 + 2.0
    for i in range(cells):
        for j in range(cells):
            x0, y0 = i * BLOCK_M - half + inset, j * BLOCK_M - half + inset
            x1, y1 = x0 + BLOCK_M - 2 * inset, y0 + BLOCK_M - 2 * inset
            ring = [lonlat(x0, y0), lonlat(x1, y0), lonlat(x1, y1), lonlat(x0, y1)]
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                    "properties": {"kind": "building", "name": f"block {i}-{j}", "height_m": 18.0},
                }
            )
    spec = SiteSpec(
        site_id=site_id,
        name=f"Synthetic grid, {len(sensors)} sensors",
        origin=GeoPoint(lat=ORIGIN[0], lon=ORIGIN[1]),
        sensors=sensors,
    )
    collection = FeatureCollection.model_validate(
        {"type": "FeatureCollection", "name": spec.name, "features": features}
    )
    return build_site(spec, collection, f"grid:{n_sensors}")


def replant(spec: ScenarioSpec, original: Site, grid: Site) -> ScenarioSpec:
    """``spec``'s timeline copied onto ``grid`` (see the module docstring), seeded."""
    rng = np.random.default_rng([spec.seed, 7])
    copies = max(1, len(grid.sensors) // SENSORS_PER_COPY)
    flat: list[tuple[EventSpec, float, float, float]] = []
    for event in spec.events:
        for i, (x, y) in enumerate(event_positions(original, event)):
            at = event.at_s + (i * event.repeat.every_s if event.repeat else 0.0)
            flat.append((event, at, x, y))
    if not flat:
        return spec.model_copy(update={"site": None})
    ref_x, ref_y = flat[0][2], flat[0][3]
    first = min(at for _, at, _, _ in flat)
    last = max(at for _, at, _, _ in flat)
    xy = grid.sensor_xyz[:, :2]
    placed: list[tuple[float, float, np.ndarray]] = []  # (start, end, anchor) of each copy
    events: list[EventSpec] = []
    for _ in range(copies):
        shift = float(rng.uniform(0.5 - first, max(0.5 - first, spec.duration_s - 2.0 - last)))
        window = (first + shift - HEARING_S, last + shift + HEARING_S)
        best: tuple[float, np.ndarray] | None = None
        for _ in range(50):  # keep copies that overlap in time out of each other's earshot
            anchor = xy[int(rng.integers(0, len(xy)))] + rng.uniform(-20.0, 20.0, size=2)
            gaps = [
                float(np.linalg.norm(anchor - other))
                for start, end, other in placed
                if start < window[1] and end > window[0]
            ]
            gap = min(gaps, default=np.inf)
            if best is None or gap > best[0]:
                best = (gap, anchor)
            if gap >= SEPARATION_M:
                break
        assert best is not None
        anchor = best[1]
        placed.append((window[0], window[1], anchor))
        for event, at, x, y in flat:
            position = XY(x=float(anchor[0] + x - ref_x), y=float(anchor[1] + y - ref_y))
            events.append(
                event.model_copy(update={"at_s": at + shift, "position": position, "repeat": None})
            )
    events.sort(key=lambda e: e.at_s)
    return spec.model_copy(update={"events": events, "site": None, "name": f"{spec.name}-grid"})
