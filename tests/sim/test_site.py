from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest

from ouie.config.loader import ConfigError
from ouie.config.site import bundled_site_dir
from ouie.core.geometry import point_in_polygon
from ouie.sim.scenario import along_street
from ouie.sim.site import load_site, resolve_site


def test_bundled_site_layout() -> None:
    site = resolve_site(None)
    assert site.site_id == "saint-etienne"
    assert 12 <= len(site.sensors) <= 16
    assert len(site.streets) == 5 and len(site.squares) == 1
    assert len(site.buildings) >= 8 and site.spec.cameras and site.spec.drone_docks
    lat, lon = site.spec.origin.lat, site.spec.origin.lon
    assert abs(lat - 45.44) < 0.01 and abs(lon - 4.38) < 0.01
    xy = site.sensor_xyz[:, :2]
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(len(xy)) * 1e9
    assert gaps.min(axis=1).max() <= 60.0
    for (x, y), building in itertools.product(xy, site.buildings):
        assert not point_in_polygon((float(x), float(y)), building.outline), building.name


def test_every_instrumented_street_point_is_heard_by_four_sensors() -> None:
    site = resolve_site(None)
    xy = site.sensor_xyz[:, :2]
    for street in site.streets:
        for along in range(0, 121, 5):
            x, y, _ = along_street(site, street.name, float(along), 0.0)
            within = int((np.linalg.norm(xy - [x, y], axis=1) <= 150.0).sum())
            assert within >= 4, (street.name, along, within)


def test_user_site_directory_and_typos(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    shutil.copytree(bundled_site_dir(), mine)
    assert load_site(mine).site_id == "saint-etienne"
    assert resolve_site(mine / "site.yaml").sensors
    text = (mine / "site.yaml").read_text(encoding="utf-8")
    (mine / "site.yaml").write_text(text.replace("height_m: 4.5", "heigth_m: 4.5", 1), "utf-8")
    with pytest.raises(ConfigError, match="heigth_m"):
        load_site(mine)
    with pytest.raises(ConfigError, match="neither"):
        resolve_site(tmp_path / "nowhere")
