"""Propagation physics against ground truth that can be computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ouie.sim.acoustics import (
    Atmosphere,
    PropagationSettings,
    absorption_db_per_m,
    maekawa_db,
    speed_of_sound,
)
from ouie.sim.render import Emission, Renderer, loudest_rms
from tests.sim.helpers import site_with

RATE = 16000
FREE_FIELD = PropagationSettings(air_absorption=False, ground_reflection=False, occlusion=False)


def impulse(n: int = 256) -> np.ndarray:
    signal = np.zeros(n)
    signal[0] = 1.0
    return signal


def rms_db(x: np.ndarray) -> float:
    return 20.0 * math.log10(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))))


def test_speed_of_sound() -> None:
    assert speed_of_sound(0.0) == pytest.approx(331.3)
    assert speed_of_sound(20.0) == pytest.approx(343.2, abs=0.1)


@pytest.mark.parametrize(
    ("temperature", "humidity", "table"),
    [
        # ISO 9613-2:1996 Table 2 (computed with ISO 9613-1), dB/km at the octave mid-bands.
        (10.0, 70.0, [0.1, 0.4, 1.0, 1.9, 3.7, 9.7, 32.8, 117.0]),
        (20.0, 70.0, [0.1, 0.3, 1.1, 2.8, 5.0, 9.0, 22.9, 76.6]),
        (30.0, 70.0, [0.1, 0.3, 1.0, 3.1, 7.4, 12.7, 23.1, 59.3]),
        (15.0, 80.0, [0.1, 0.3, 1.1, 2.4, 4.1, 8.3, 23.7, 82.8]),
    ],
)
def test_air_absorption_matches_iso_9613_tables(
    temperature: float, humidity: float, table: list[float]
) -> None:
    exact_midbands = 1000.0 * 10.0 ** (np.arange(-12, 10, 3) / 10.0)  # 63 Hz … 8 kHz
    alpha_db_per_km = absorption_db_per_m(exact_midbands, temperature, humidity) * 1000.0
    for computed, expected in zip(alpha_db_per_km, table, strict=True):
        assert computed == pytest.approx(expected, rel=0.03, abs=0.06)


@pytest.mark.parametrize("distance", [7.3, 33.0, 101.7])
def test_delay_is_distance_over_c_within_a_sample(distance: float) -> None:
    site = site_with([(distance, 0.0, 1.5)])
    atmosphere = Atmosphere(temperature_c=20.0)
    renderer = Renderer(site, RATE, atmosphere, FREE_FIELD)
    start = 0.5
    emission = Emission(impulse(), start, np.array([0.0, 0.0, 1.5]), 94.0)
    contribution = renderer.render(emission)[0]
    peak = contribution.start_sample + int(np.argmax(contribution.samples))
    expected = (start + distance / atmosphere.speed_of_sound) * RATE
    assert abs(peak - expected) <= 1.0
    # Sub-sample: the output is the band-limited impulse sinc(n - delay), fractional part kept.
    n = np.arange(peak - 20, peak + 21)
    got = contribution.samples[n - contribution.start_sample] * distance / 10 ** (-26 / 20)
    assert np.max(np.abs(got - np.sinc(n - expected))) < 0.01


def test_spherical_spreading_is_six_db_per_doubling() -> None:
    site = site_with([(10.0, 0.0, 1.5), (20.0, 0.0, 1.5), (40.0, 0.0, 1.5)])
    renderer = Renderer(site, RATE, Atmosphere(), FREE_FIELD)
    noise = np.random.default_rng(3).standard_normal(RATE)
    out = renderer.render(Emission(noise, 0.0, np.array([0.0, 0.0, 1.5]), 100.0))
    levels = [rms_db(out[k].samples) for k in range(3)]
    assert levels[0] - levels[1] == pytest.approx(20 * math.log10(2), abs=0.05)
    assert levels[1] - levels[2] == pytest.approx(20 * math.log10(2), abs=0.05)


def test_level_at_one_metre_maps_to_dbfs_through_the_sensitivity() -> None:
    site = site_with([(1.0, 0.0, 1.5)])  # sensitivity −26 dBFS at 94 dB SPL
    renderer = Renderer(site, RATE, Atmosphere(), FREE_FIELD)
    tone = np.sin(2 * np.pi * 1000.0 * np.arange(RATE) / RATE)
    tone /= loudest_rms(tone, RATE)
    out = renderer.render(Emission(tone, 0.0, np.array([0.0, 0.0, 1.5]), 94.0))[0].samples
    assert 20 * math.log10(loudest_rms(out, RATE)) == pytest.approx(-26.0, abs=0.1)


def test_absorption_at_4khz_over_500m_matches_iso() -> None:
    distance = 500.0
    site = site_with([(distance, 0.0, 1.5)])
    atmosphere = Atmosphere(temperature_c=20.0, humidity_pct=70.0)
    tone = np.sin(2 * np.pi * 4000.0 * np.arange(RATE // 2) / RATE)
    source = np.array([0.0, 0.0, 1.5])
    with_air = PropagationSettings(
        air_absorption=True, ground_reflection=False, occlusion=False, max_range_m=1000.0
    )
    without = with_air.model_copy(update={"air_absorption": False})
    levels = []
    for settings in (with_air, without):
        out = Renderer(site, RATE, atmosphere, settings).render(Emission(tone, 0.0, source, 120.0))
        middle = out[0].samples[2000:-2000]  # steady part, away from the edges
        levels.append(rms_db(middle))
    expected = float(absorption_db_per_m(4000.0, 20.0, 70.0)) * distance  # ≈ 11.5 dB
    assert expected == pytest.approx(22.9e-3 * distance, rel=0.03)
    assert levels[1] - levels[0] == pytest.approx(expected, abs=0.2)


def test_ground_reflection_adds_the_image_source_arrival() -> None:
    hs, hr, d = 1.5, 4.5, 30.0
    site = site_with([(d, 0.0, hr)])
    atmosphere = Atmosphere(temperature_c=20.0)
    settings = PropagationSettings(air_absorption=False, ground_reflection=True, occlusion=False)
    renderer = Renderer(site, RATE, atmosphere, settings)
    out = renderer.render(Emission(impulse(), 0.0, np.array([0.0, 0.0, hs]), 94.0))[0]
    direct = math.hypot(d, hr - hs)
    image = math.hypot(d, hr + hs)
    c = atmosphere.speed_of_sound
    n = out.start_sample + np.arange(out.samples.size)
    scale = 10 ** (-26 / 20)
    expected = scale * (
        np.sinc(n - direct / c * RATE) / direct + 0.8 * np.sinc(n - image / c * RATE) / image
    )
    assert np.max(np.abs(out.samples - expected)) < 0.01 * scale / direct


def test_occlusion_attenuates_only_when_a_building_is_crossed() -> None:
    building = ([(20.0, -5.0), (30.0, -5.0), (30.0, 5.0), (20.0, 5.0)], 15.0)
    # Sensor 0 behind the building; sensor 1 at the same distance with a clear view.
    site = site_with([(50.0, 0.0, 4.5), (0.0, 50.0, 4.5)], buildings=[building])
    clear = site_with([(50.0, 0.0, 4.5), (0.0, 50.0, 4.5)])
    settings = PropagationSettings(air_absorption=False, ground_reflection=False, occlusion=True)
    noise = np.random.default_rng(5).standard_normal(RATE // 2)
    source = np.array([0.0, 0.0, 1.5])
    blocked = Renderer(site, RATE, Atmosphere(), settings).render(Emission(noise, 0.0, source, 100))
    free = Renderer(clear, RATE, Atmosphere(), settings).render(Emission(noise, 0.0, source, 100))
    loss_behind = rms_db(free[0].samples) - rms_db(blocked[0].samples)
    loss_clear = rms_db(free[1].samples) - rms_db(blocked[1].samples)
    assert loss_clear == pytest.approx(0.0, abs=1e-6)
    assert 10.0 < loss_behind <= 25.0
    assert Renderer(site, RATE).arrival(Emission(noise, 0.0, source, 100), 0).occluded
    assert not Renderer(site, RATE).arrival(Emission(noise, 0.0, source, 100), 1).occluded


def test_barrier_attenuation_grows_with_frequency_and_is_capped() -> None:
    freqs = np.array([125.0, 1000.0, 8000.0])
    att = maekawa_db(2.0, freqs, 343.0, 25.0)
    assert att[0] < att[1] <= att[2] == pytest.approx(25.0)
    assert maekawa_db(0.0, freqs, 343.0, 25.0)[0] == pytest.approx(10 * math.log10(3))
