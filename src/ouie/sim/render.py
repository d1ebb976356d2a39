"""What each sensor hears: sources propagated to every microphone, on top of its ambience.

A source is a signal normalised so that its loudest 50 ms RMS is 1.0, placed at a point
with a level in dB SPL at 1 m (the same loudest-50-ms measure the node reports). For each
sensor every propagation path (direct, ground image) becomes a frequency response —
spreading, ISO 9613-1 air absorption per FFT bin, roof diffraction when a building is in
the way — times a linear phase for its exact delay, so arrival times are sample-accurate
(fractional delays by FFT phase shift, a band-limited interpolation). The sum of the paths
is one inverse FFT per source and sensor. Pressure becomes digital full scale through the
sensor's sensitivity (e.g. 94 dB SPL ↔ −26 dBFS RMS). Sensor streams are then read block by
block: ambience + every contribution overlapping the block, clipped like an ADC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.fft import irfft, next_fast_len, rfft, rfftfreq

from ouie.sim.acoustics import (
    Atmosphere,
    PropagationPath,
    PropagationSettings,
    path_response,
    propagation_paths,
    transfer_function,
)
from ouie.sim.site import Building, Site

FloatArray = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

PAD = 64  # samples of margin before the earliest arrival (fractional-delay ringing)
REFERENCE_DB_SPL = 94.0


def db_spl_to_digital(level_db_spl: float, sensitivity_dbfs: float) -> float:
    """Digital RMS (full scale = 1.0) of a sound at ``level_db_spl`` for a sensor."""
    return float(10.0 ** ((level_db_spl - REFERENCE_DB_SPL + sensitivity_dbfs) / 20.0))


def loudest_rms(signal: FloatArray | F64, sample_rate: int, frame_s: float = 0.05) -> float:
    """Loudest ``frame_s`` RMS of ``signal`` (the node's level measure, linear)."""
    step = max(1, round(frame_s * sample_rate))
    n = signal.size // step
    if n == 0:
        return float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) if signal.size else 0.0
    frames = np.asarray(signal[: n * step], dtype=np.float64).reshape(n, step)
    return float(np.sqrt(np.mean(np.square(frames), axis=1)).max())


def normalise_loudest(signal: F64 | FloatArray, sample_rate: int) -> F64:
    peak = loudest_rms(signal, sample_rate)
    if peak <= 0.0:
        raise ValueError("source signal is silent")
    return np.asarray(signal, dtype=np.float64) / peak


@dataclass(frozen=True)
class Emission:
    """A sound leaving a point of the site at a time (scenario seconds)."""

    signal: F64  # at the render rate, loudest 50 ms RMS = 1.0
    start_s: float  # emission time of signal[0]
    xyz: F64  # local metres
    level_db_spl: float  # loudest 50 ms RMS at 1 m


@dataclass(frozen=True)
class Arrival:
    """Ground truth of one emission at one sensor (direct path)."""

    sensor_index: int
    distance_m: float
    time_s: float  # true arrival of the sound's onset at the sensor (direct path), scenario s
    level_db_spl: float  # expected loudest level at the sensor (spreading + occlusion, approx.)
    occluded: bool


@dataclass(frozen=True)
class Contribution:
    start_sample: int
    samples: FloatArray


class Renderer:
    """Propagates emissions to the sensors of a site."""

    def __init__(
        self,
        site: Site,
        sample_rate: int,
        atmosphere: Atmosphere | None = None,
        propagation: PropagationSettings | None = None,
    ) -> None:
        self.site = site
        self.sample_rate = sample_rate
        self.atmosphere = atmosphere or Atmosphere()
        self.propagation = propagation or PropagationSettings()
        self.sensor_xyz = site.sensor_xyz
        self.sensitivity = np.array([s.sensitivity_dbfs for s in site.sensors], dtype=np.float64)
        boxes = [
            (
                min(p[0] for p in b.outline),
                min(p[1] for p in b.outline),
                max(p[0] for p in b.outline),
                max(p[1] for p in b.outline),
            )
            for b in site.buildings
        ]
        self._boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)

    def _buildings_near(self, a: F64, b: F64) -> tuple[Building, ...]:
        """Buildings whose bounding box meets the bounding box of the segment a–b."""
        if not self._boxes.size:
            return ()
        lo = np.minimum(a[:2], b[:2])
        hi = np.maximum(a[:2], b[:2])
        hit = (
            (self._boxes[:, 0] <= hi[0])
            & (self._boxes[:, 2] >= lo[0])
            & (self._boxes[:, 1] <= hi[1])
            & (self._boxes[:, 3] >= lo[1])
        )
        return tuple(self.site.buildings[i] for i in np.nonzero(hit)[0])

    def paths(self, xyz: F64, sensor_index: int) -> list[PropagationPath]:
        receiver = self.sensor_xyz[sensor_index]
        return propagation_paths(
            xyz,
            receiver,
            self.atmosphere,
            self.propagation,
            self._buildings_near(xyz, receiver),
        )

    def in_range(self, xyz: F64) -> list[int]:
        """Sensors within ``max_range_m`` (horizontal) of a point."""
        horizontal = np.linalg.norm(self.sensor_xyz[:, :2] - xyz[:2], axis=1)
        return [int(k) for k in np.nonzero(horizontal <= self.propagation.max_range_m)[0]]

    def span(self, emission: Emission) -> tuple[int, int]:
        """Samples [first, last) any sensor's contribution of ``emission`` may cover."""
        indices = self.in_range(emission.xyz)
        if not indices:
            return 0, 0
        distances = np.linalg.norm(self.sensor_xyz[indices] - emission.xyz, axis=1)
        c = self.atmosphere.speed_of_sound
        mirrored = self.sensor_xyz[indices].copy()
        mirrored[:, 2] += 2.0 * emission.xyz[2]
        farthest = float(np.linalg.norm(mirrored - emission.xyz, axis=1).max())
        first = math.floor((emission.start_s + float(distances.min()) / c) * self.sample_rate)
        last = math.ceil((emission.start_s + farthest / c) * self.sample_rate)
        return first - 2 * PAD, last + emission.signal.size + 4 * PAD

    def arrival(self, emission: Emission, sensor_index: int, onset_s: float = 0.0) -> Arrival:
        """Direct-path arrival at a sensor of the sound that starts ``onset_s`` into the
        emission's signal (its true onset)."""
        direct = self.paths(emission.xyz, sensor_index)[0]
        freqs = np.array([1000.0])
        magnitude = path_response(
            direct,
            emission.xyz,
            self.sensor_xyz[sensor_index],
            freqs,
            self.atmosphere,
            self.propagation,
        )[0]
        level = emission.level_db_spl + 20.0 * math.log10(max(magnitude, 1e-12))
        return Arrival(
            sensor_index,
            direct.length_m,
            emission.start_s + onset_s + direct.delay_s,
            level,
            bool(direct.screens),
        )

    def render(
        self, emission: Emission, sensor_indices: list[int] | None = None
    ) -> dict[int, Contribution]:
        """Contributions of ``emission`` at each sensor in range (index → samples)."""
        indices = self.in_range(emission.xyz) if sensor_indices is None else sensor_indices
        rate = self.sample_rate
        plans: list[tuple[int, list[PropagationPath], float]] = []
        spread = 0.0
        for k in indices:
            paths = self.paths(emission.xyz, k)
            delays = [(emission.start_s + p.delay_s) * rate for p in paths]
            spread = max(spread, max(delays) - min(delays))
            plans.append((k, paths, min(delays)))
        if not plans:
            return {}
        n_fft = next_fast_len(emission.signal.size + 3 * PAD + math.ceil(spread) + 1)
        spectrum = rfft(emission.signal, n_fft)
        freqs = rfftfreq(n_fft, 1.0 / rate)
        out: dict[int, Contribution] = {}
        for k, paths, first in plans:
            base = math.floor(first) - PAD
            delays_s = [((emission.start_s + p.delay_s) * rate - base) / rate for p in paths]
            response = transfer_function(
                paths,
                delays_s,
                emission.xyz,
                self.sensor_xyz[k],
                freqs,
                self.atmosphere,
                self.propagation,
            )
            scale = db_spl_to_digital(emission.level_db_spl, float(self.sensitivity[k]))
            received = irfft(spectrum * response, n_fft) * scale
            out[k] = Contribution(base, np.asarray(received, dtype=np.float32))
        return out


class ContributionStore:
    """Every emission's contributions, rendered for all sensors when first needed.

    Rendering lazily keeps memory bounded by the sounds playing at once (a thousand-sensor
    grid with hundreds of events would not fit otherwise); ``release_before`` forgets
    emissions that every sensor has read past. Without releases, any block can be read in
    any order.
    """

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self._pending: list[tuple[int, int, int, Emission]] = []  # first, last, id, emission
        self._rendered: dict[int, tuple[int, dict[int, Contribution]]] = {}  # id → last, ...
        self._released_before = 0
        self.rendered_count = 0

    def add(self, emission: Emission) -> None:
        first, last = self.renderer.span(emission)
        if last > first:
            self._pending.append((first, last, len(self._pending), emission))

    def overlapping(self, sensor: int, start: int, end: int) -> list[Contribution]:
        if start < self._released_before:
            raise ValueError("block requested before the store's release point")
        found: list[Contribution] = []
        for first, last, ident, emission in self._pending:
            if first >= end or last <= start:
                continue
            rendered = self._rendered.get(ident)
            if rendered is None:
                rendered = (last, self.renderer.render(emission))
                self._rendered[ident] = rendered
                self.rendered_count += 1
            contribution = rendered[1].get(sensor)
            if contribution is not None:
                found.append(contribution)
        return found

    def release_before(self, sample: int) -> None:
        """No block starting before ``sample`` will be read again: free what ended."""
        self._released_before = max(self._released_before, sample)
        done = {ident for first, last, ident, _ in self._pending if last <= sample}
        if done:
            self._pending = [p for p in self._pending if p[2] not in done]
            for ident in done:
                self._rendered.pop(ident, None)


@dataclass
class SensorStream:
    """One sensor's signal, read in blocks: ambience plus the contributions overlapping it."""

    ambience: AmbienceReader
    store: ContributionStore | None = None
    index: int = 0
    contributions: list[Contribution] = field(default_factory=list)
    adc_bits: int | None = 16

    def add(self, contribution: Contribution) -> None:
        self.contributions.append(contribution)

    def block(self, start: int, n: int) -> FloatArray:
        out = self.ambience.read(start, n).astype(np.float64)
        end = start + n
        lazy = self.store.overlapping(self.index, start, end) if self.store else []
        for c in [*self.contributions, *lazy]:
            c_end = c.start_sample + c.samples.size
            if c_end <= start or c.start_sample >= end:
                continue
            lo = max(start, c.start_sample)
            hi = min(end, c_end)
            out[lo - start : hi - start] += c.samples[lo - c.start_sample : hi - c.start_sample]
        np.clip(out, -1.0, 1.0, out=out)
        if self.adc_bits:
            full = float(2 ** (self.adc_bits - 1) - 1)
            out = np.round(out * full) / full
        return out.astype(np.float32)


class AmbienceReader:
    """Reads a sensor's ambience: a few looped tracks at per-sensor offsets and gains."""

    def __init__(self, tracks: list[FloatArray], offsets: list[int], gains: list[float]) -> None:
        if not (len(tracks) == len(offsets) == len(gains)):
            raise ValueError("tracks, offsets and gains must have the same length")
        self.tracks = tracks
        self.offsets = offsets
        self.gains = gains

    def read(self, start: int, n: int) -> FloatArray:
        out = np.zeros(n, dtype=np.float32)
        for track, offset, gain in zip(self.tracks, self.offsets, self.gains, strict=True):
            if gain == 0.0 or track.size == 0:
                continue
            idx = (np.arange(start, start + n, dtype=np.int64) + offset) % track.size
            out += np.float32(gain) * track[idx]
        return out


SILENCE = AmbienceReader([], [], [])
