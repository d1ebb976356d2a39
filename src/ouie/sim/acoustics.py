"""Outdoor sound propagation from a point source to a microphone.

The model (docs/twin.md has the details and limits):

- **delay** ``r / c`` with ``c = 331.3·sqrt(1 + T/273.15)`` m/s;
- **spherical spreading** ``1 / r`` relative to the level at 1 m (−6 dB per doubling);
- **air absorption** per ISO 9613-1:1993 (the pure-tone attenuation coefficient formula,
  equations 3–5 and Annex B for the saturation vapour pressure), applied per frequency bin;
- **ground reflection** (optional) as an image source below a flat ground with a broadband
  pressure reflection coefficient;
- **building occlusion**: when the 2-D straight path crosses a building footprint, the
  wave must diffract over the roof. Each crossed building is a thin screen at the middle of
  the crossing, as high as the building; the excess attenuation is Maekawa's
  ``10·log10(3 + 20·N)`` dB with Fresnel number ``N = 2δ/λ`` (δ the path detour), capped at
  ``max_barrier_db``. Several buildings add up to the same cap. Paths around building
  corners and reflections off façades are not modelled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import Field

from ouie.core.geometry import Point, segment_spans_inside
from ouie.core.model_base import StrictModel
from ouie.sim.site import Building

FloatArray = npt.NDArray[np.float64]

P_REF_KPA = 101.325
T0_K = 293.15  # ISO 9613-1 reference air temperature
T01_K = 273.16  # triple-point isotherm temperature


class Atmosphere(StrictModel):
    temperature_c: float = Field(default=15.0, ge=-40.0, le=50.0)
    humidity_pct: float = Field(default=70.0, ge=0.0, le=100.0, description="relative humidity")
    pressure_kpa: float = Field(default=P_REF_KPA, ge=50.0, le=110.0)

    @property
    def speed_of_sound(self) -> float:
        return speed_of_sound(self.temperature_c)


def speed_of_sound(temperature_c: float) -> float:
    """Speed of sound in dry air, m/s."""
    return 331.3 * math.sqrt(1.0 + temperature_c / 273.15)


def absorption_db_per_m(
    frequency_hz: FloatArray | float,
    temperature_c: float = 20.0,
    humidity_pct: float = 70.0,
    pressure_kpa: float = P_REF_KPA,
) -> FloatArray:
    """ISO 9613-1 pure-tone atmospheric absorption coefficient α in dB/m."""
    f = np.asarray(frequency_hz, dtype=np.float64)
    t = temperature_c + 273.15
    pa = pressure_kpa / P_REF_KPA
    # Molar concentration of water vapour, percent (Annex B).
    c_sat = -6.8346 * (T01_K / t) ** 1.261 + 4.6151
    h = humidity_pct * (10.0**c_sat) / pa
    fr_o = pa * (24.0 + 4.04e4 * h * (0.02 + h) / (0.391 + h))
    tr = t / T0_K
    fr_n = pa * tr**-0.5 * (9.0 + 280.0 * h * math.exp(-4.170 * (tr ** (-1 / 3) - 1.0)))
    f2 = f * f
    alpha = (
        8.686
        * f2
        * (
            1.84e-11 / pa * (t / T0_K) ** 0.5
            + (t / T0_K) ** -2.5
            * (
                0.01275 * math.exp(-2239.1 / t) / (fr_o + f2 / fr_o)
                + 0.1068 * math.exp(-3352.0 / t) / (fr_n + f2 / fr_n)
            )
        )
    )
    return np.asarray(alpha, dtype=np.float64)


def maekawa_db(detour_m: float, frequency_hz: FloatArray, c: float, cap_db: float) -> FloatArray:
    """Barrier excess attenuation for a path detour ``δ`` (Maekawa's chart as a formula)."""
    fresnel = 2.0 * detour_m * np.asarray(frequency_hz, dtype=np.float64) / c
    return np.minimum(cap_db, 10.0 * np.log10(3.0 + 20.0 * np.maximum(fresnel, 0.0)))


class PropagationSettings(StrictModel):
    air_absorption: bool = True
    ground_reflection: bool = True
    ground_reflection_coefficient: float = Field(
        default=0.8, ge=0.0, le=1.0, description="broadband pressure reflection, hard pavement"
    )
    occlusion: bool = True
    max_barrier_db: float = Field(default=25.0, ge=0.0, le=40.0)
    max_range_m: float = Field(default=400.0, gt=0.0, description="sources farther are not heard")


@dataclass(frozen=True)
class Screen:
    """A building crossed by the path, as a thin screen: where along the path and how tall."""

    building: str
    t: float  # fraction of the horizontal path, source → receiver
    height_m: float


@dataclass(frozen=True)
class PropagationPath:
    """One ray from source to receiver: direct, or the ground-reflected image."""

    kind: str  # "direct" | "ground"
    length_m: float
    delay_s: float
    gain: float  # spreading × reflection, linear pressure, relative to 1 m
    screens: tuple[Screen, ...]


def crossing_span(p1: Point, p2: Point, outline: tuple[Point, ...]) -> tuple[float, float] | None:
    """``(t_in, t_out)`` along ``p1→p2`` of the part inside a building's footprint, or None.

    For a concave footprint crossed several times the span runs from the first entry to the
    last exit: one screen per building is what the over-the-roof diffraction model needs. A
    path along a wall or touching a corner is not blocked.
    """
    spans = segment_spans_inside(p1, p2, outline)
    if not spans:
        return None
    return spans[0][0], spans[-1][1]


def crossed_screens(
    source_xy: tuple[float, float],
    receiver_xy: tuple[float, float],
    buildings: tuple[Building, ...],
) -> tuple[Screen, ...]:
    screens: list[Screen] = []
    for building in buildings:
        span = crossing_span(source_xy, receiver_xy, building.outline)
        if span is not None:
            screens.append(Screen(building.name, (span[0] + span[1]) / 2.0, building.height_m))
    return tuple(sorted(screens, key=lambda s: s.t))


def detour_m(source: FloatArray, receiver: FloatArray, screen: Screen, z_source: float) -> float:
    """Extra path length going over the top edge of ``screen`` instead of straight through."""
    horizontal = float(np.hypot(*(receiver[:2] - source[:2])))
    a = screen.t * horizontal
    b = horizontal - a
    z_receiver = float(receiver[2])
    z_line = z_source + screen.t * (z_receiver - z_source)
    if screen.height_m <= z_line:
        return 0.0
    top = screen.height_m
    over = math.hypot(a, top - z_source) + math.hypot(b, top - z_receiver)
    straight = math.hypot(horizontal, z_receiver - z_source)
    return max(0.0, over - straight)


def propagation_paths(
    source: FloatArray,
    receiver: FloatArray,
    atmosphere: Atmosphere,
    settings: PropagationSettings,
    buildings: tuple[Building, ...] = (),
) -> list[PropagationPath]:
    """Direct path and, when enabled, the ground-reflected path (image source at −z)."""
    c = atmosphere.speed_of_sound
    screens: tuple[Screen, ...] = ()
    if settings.occlusion and buildings:
        source_xy = (float(source[0]), float(source[1]))
        screens = crossed_screens(source_xy, (float(receiver[0]), float(receiver[1])), buildings)
    direct = max(float(np.linalg.norm(receiver - source)), 0.05)
    paths = [PropagationPath("direct", direct, direct / c, 1.0 / direct, screens)]
    if settings.ground_reflection and settings.ground_reflection_coefficient > 0.0:
        image = source.copy()
        image[2] = -image[2]
        length = max(float(np.linalg.norm(receiver - image)), 0.05)
        gain = settings.ground_reflection_coefficient / length
        paths.append(PropagationPath("ground", length, length / c, gain, screens))
    return paths


def path_response(
    path: PropagationPath,
    source: FloatArray,
    receiver: FloatArray,
    frequency_hz: FloatArray,
    atmosphere: Atmosphere,
    settings: PropagationSettings,
) -> FloatArray:
    """Magnitude response (linear) of one path at ``frequency_hz``: all but the delay."""
    db = np.zeros_like(frequency_hz, dtype=np.float64)
    if settings.air_absorption:
        db -= path.length_m * absorption_db_per_m(
            frequency_hz, atmosphere.temperature_c, atmosphere.humidity_pct, atmosphere.pressure_kpa
        )
    if path.screens:
        z_source = float(source[2]) if path.kind == "direct" else -float(source[2])
        barrier = np.zeros_like(db)
        for screen in path.screens:
            delta = detour_m(np.array([*source[:2], z_source]), receiver, screen, z_source)
            if delta > 0.0:
                c = atmosphere.speed_of_sound
                barrier += maekawa_db(delta, frequency_hz, c, settings.max_barrier_db)
        db -= np.minimum(barrier, settings.max_barrier_db)
    return np.asarray(path.gain * 10.0 ** (db / 20.0), dtype=np.float64)


def transfer_function(
    paths: Sequence[PropagationPath],
    delays_s: Sequence[float],
    source: FloatArray,
    receiver: FloatArray,
    frequency_hz: FloatArray,
    atmosphere: Atmosphere,
    settings: PropagationSettings,
) -> npt.NDArray[np.complex128]:
    """The sum of ``paths`` as one complex response at ``frequency_hz``: each path's magnitude
    (``path_response``) times a linear phase for its delay (``delays_s``, seconds, from
    whatever origin the caller's signal starts at)."""
    response = np.zeros(np.shape(frequency_hz), dtype=np.complex128)
    for path, delay_s in zip(paths, delays_s, strict=True):
        magnitude = path_response(path, source, receiver, frequency_hz, atmosphere, settings)
        response += magnitude * np.exp(-2j * np.pi * frequency_hz * delay_s)
    return response
