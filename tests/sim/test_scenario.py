from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from ouie.config.loader import ConfigError
from ouie.sim.grid import grid_site, replant
from ouie.sim.scenario import (
    ScenarioSpec,
    along_street,
    build,
    bundled_scenario_names,
    load_scenario,
)
from ouie.sim.site import resolve_site
from ouie.sim.synthetic import kinds, synthesise

BUNDLED = {"quiet-night", "saturday-night", "shooting", "break-in", "crash", "graffiti"}


def test_bundled_scenarios_load_and_name_known_streets() -> None:
    assert set(bundled_scenario_names()) >= BUNDLED
    site = resolve_site(None)
    street_names = {s.name for s in site.streets}
    for name in BUNDLED:
        spec = load_scenario(name)
        assert spec.name == name and spec.duration_s > 0
        for event in spec.events:
            street = getattr(event.position, "street", None)
            assert street is None or street in street_names
    shooting = load_scenario("shooting").events[0]
    assert shooting.label == "gunshot" and shooting.repeat and shooting.repeat.count >= 3


def test_scenario_errors_are_readable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a file nor a bundled"):
        load_scenario("no-such-scenario")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nduration_s: 5\nevnts: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="evnts"):
        load_scenario(bad)


def test_every_synthetic_source_is_normalised() -> None:
    for kind in kinds():
        signal = synthesise(kind, np.random.default_rng(1), 16000)
        assert signal.size > 1600 and np.all(np.isfinite(signal))
        frames = signal[: signal.size // 800 * 800].reshape(-1, 800)
        assert np.sqrt(np.mean(frames**2, axis=1)).max() == pytest.approx(1.0)


SMALL = ScenarioSpec.model_validate(
    {
        "name": "small",
        "duration_s": 4.0,
        "seed": 5,
        "ambience": {"scene": "street", "level_db_spl": 50.0, "source": "generated"},
        "events": [
            {
                "at_s": 1.0,
                "label": "glass_breaking",
                "source": "synthetic:glass",
                "position": {"street": "Rue Saint-Jean", "along_m": 40.0, "side_m": 5.0},
                "repeat": {"count": 3, "every_s": 1.0, "step_m": 10.0},
            }
        ],
    }
)


def test_build_is_reproducible_and_drops_events_too_late_to_hear() -> None:
    first, second = build(SMALL), build(SMALL)
    assert [t.onset_s for t in first.truth] == [1.0, 2.0]  # the third (3 s) is too late
    assert first.clock_offsets_s == second.clock_offsets_s
    for a, b in zip(first.streams, second.streams, strict=True):
        assert np.array_equal(a.block(12000, 8000), b.block(12000, 8000))
    other_seed = build(SMALL.model_copy(update={"seed": 6}))
    assert not np.array_equal(first.streams[0].block(0, 8000), other_seed.streams[0].block(0, 8000))


def test_truth_positions_and_arrivals() -> None:
    built = build(SMALL)
    site = built.site
    x, y, _ = along_street(site, "Rue Saint-Jean", 50.0, 5.0)
    second = built.truth[1]
    assert (second.x, second.y) == pytest.approx((x, y))
    assert second.synthetic and second.source.startswith("synthetic:glass")
    nearest = min(second.arrivals.values())
    assert second.nearest_onset_s == pytest.approx(nearest)
    assert nearest > second.onset_s
    assert second.sensors_in_range >= 1
    # The sound really arrives then: the nearest sensor's stream jumps at that sample.
    k = [s.id for s in site.sensors].index(second.nearest_sensor)
    rate = built.sample_rate
    at = round(nearest * rate)
    before = built.streams[k].block(at - 1600, 1600)
    after = built.streams[k].block(at, 1600)
    assert np.sqrt(np.mean(after**2)) > 10 * np.sqrt(np.mean(before**2))


def test_replant_on_a_grid_keeps_classes_and_relative_geometry() -> None:
    grid = grid_site(64)
    assert len(grid.sensors) == 64
    one = replant(load_scenario("shooting"), resolve_site(None), grid)
    shots = [e for e in one.events if e.label == "gunshot"]
    assert len(shots) == 6
    steps = [
        np.hypot(b.position.x - a.position.x, b.position.y - a.position.y)  # type: ignore[union-attr]
        for a, b in itertools.pairwise(shots)
    ]
    assert steps == pytest.approx([15.0] * 5, abs=0.5)
    assert [b.at_s - a.at_s for a, b in itertools.pairwise(shots)] == pytest.approx([3.5] * 5)
    two = replant(load_scenario("shooting"), resolve_site(None), grid_site(128))
    assert sum(e.label == "gunshot" for e in two.events) == 12
    assert all(0.5 <= e.at_s <= two.duration_s - 1.0 for e in two.events)


def test_truth_onset_is_the_sound_not_the_start_of_the_clip(tmp_path: Path) -> None:
    import soundfile as sf

    rate = 16000
    clip = np.zeros(rate, dtype=np.float32)
    clip[rate // 2 : rate // 2 + 800] = np.random.default_rng(2).standard_normal(800) * 0.5
    path = tmp_path / "late.wav"
    sf.write(path, clip, rate)
    spec = SMALL.model_copy(
        update={
            "events": [
                SMALL.events[0].model_copy(
                    update={"source": f"file:{path}", "repeat": None, "label": "gunshot"}
                )
            ]
        }
    )
    built = build(spec)
    event = built.truth[0]
    assert event.onset_s == 1.0 and not event.synthetic
    k = [s.id for s in built.site.sensors].index(event.nearest_sensor)
    distance = float(np.linalg.norm(built.site.sensor_xyz[k] - [event.x, event.y, event.z]))
    expected = 1.0 + distance / spec.atmosphere.speed_of_sound
    assert event.nearest_onset_s == pytest.approx(expected, abs=0.006)  # 5 ms onset frames
