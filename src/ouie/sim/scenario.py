"""Scenarios: a site, an ambience and a timeline of sound events, seeded and reproducible.

A scenario YAML names its duration, seed, weather, ambience and events. Each event has a
ground-truth ``label`` (one of ouie's classes, or a non-target such as ``crowd``), a
``source`` (``auto``, ``synthetic:<kind>``, ``dataset:<label>`` or ``file:<path>``), a
position (``{x, y}`` metres in the site frame, ``{lat, lon}``, or ``{street, along_m,
side_m}``) and a level in dB SPL at 1 m; ``repeat`` places a series (e.g. shots walking
along a street). ``build`` turns it into per-sensor streams plus the ground truth.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated

import numpy as np
import numpy.typing as npt
from pydantic import Field, ValidationError

from ouie.config.loader import ConfigError, describe_validation_error, read_yaml
from ouie.core.labels import is_target
from ouie.core.model_base import StrictModel
from ouie.eval.dataset import Clip, DatasetError, load_dataset
from ouie.eval.extent import energetic_segments
from ouie.hub.association import is_impulsive
from ouie.node.audio_io import AudioInputError, read_audio, to_rate
from ouie.sim.acoustics import Atmosphere, PropagationSettings
from ouie.sim.ambience import AmbienceSettings, sensor_ambience
from ouie.sim.render import (
    ContributionStore,
    Emission,
    Renderer,
    SensorStream,
    normalise_loudest,
)
from ouie.sim.site import Site, resolve_site
from ouie.sim.synthetic import DEFAULT_KIND, provenance, synthesise

F64 = npt.NDArray[np.float64]
Label = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")]

#: Level at 1 m (loudest 50 ms RMS, dB SPL) when a scenario event gives none.
DEFAULT_LEVEL_DB_SPL: dict[str, float] = {
    "gunshot": 130.0,
    "explosion": 135.0,
    "glass_breaking": 105.0,
    "scream": 105.0,
    "siren": 115.0,
    "car_alarm": 115.0,
    "spray_can": 80.0,
    "vehicle_crash": 120.0,
    "crowd": 75.0,
    "door_slam": 100.0,
}


#: An event starting less than this before the end of a scenario is not played.
MIN_TAIL_S = 1.0

#: Impulsive clips are cut before a second bang (one starting this long after the first
#: sounding run ends): the truth of an event is one round, so a clip holding a shot and
#: its repeat would have the hub rightly report a round the truth does not have.
SECOND_BANG_GAP_S = 0.3
#: ... this long before the second bang's onset, ending in a fade-out this long, so the
#: cut neither clicks nor lets the second bang's attack through.
BANG_CUT_LEAD_S = 0.02
BANG_FADE_S = 0.01


class XY(StrictModel):
    x: float
    y: float


class LatLon(StrictModel):
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)


class AlongStreet(StrictModel):
    street: str
    along_m: float = Field(ge=0.0, description="distance from the street's first point")
    side_m: float = Field(default=0.0, description="offset to the left of the street's direction")


PositionSpec = XY | LatLon | AlongStreet


class Repeat(StrictModel):
    count: int = Field(ge=1, le=1000)
    every_s: float = Field(gt=0.0)
    step_m: float = Field(default=0.0, description="move this far between repeats")
    heading_deg: float = Field(
        default=90.0, description="direction of travel for x/y positions (0 = north, 90 = east)"
    )


class EventSpec(StrictModel):
    at_s: float = Field(ge=0.0, description="emission time of the sound's onset")
    label: Label
    source: str = Field(default="auto", pattern=r"^(auto|synthetic:.+|dataset:.+|file:.+)$")
    position: PositionSpec
    height_m: float = Field(default=1.5, ge=0.0, le=100.0)
    level_db_spl: float | None = Field(default=None, ge=40.0, le=170.0)
    repeat: Repeat | None = None
    note: str = ""


class ScenarioSpec(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    description: str = ""
    site: str | None = Field(default=None, description="bundled site name or path; default bundled")
    duration_s: float = Field(gt=0.0, le=24 * 3600.0)
    seed: int = 0
    atmosphere: Atmosphere = Field(default_factory=Atmosphere)
    ambience: AmbienceSettings = Field(default_factory=AmbienceSettings)
    propagation: PropagationSettings = Field(default_factory=PropagationSettings)
    clock_jitter_ms: float = Field(
        default=0.3, ge=0.0, le=100.0, description="σ of each sensor's clock offset"
    )
    events: list[EventSpec] = Field(default_factory=list)


# --- loading ----------------------------------------------------------------------------


def bundled_scenario_names() -> list[str]:
    root = Path(str(resources.files("ouie.sim") / "scenarios"))
    return sorted(p.stem for p in root.glob("*.yaml"))


def load_scenario(name_or_path: str | Path) -> ScenarioSpec:
    """A bundled scenario by name (``shooting``) or a scenario YAML file."""
    path = Path(name_or_path)
    if not path.is_file():
        bundled = Path(str(resources.files("ouie.sim") / "scenarios" / f"{name_or_path}.yaml"))
        if not bundled.is_file():
            raise ConfigError(
                f"scenario {name_or_path!s} is neither a file nor a bundled scenario "
                f"({', '.join(bundled_scenario_names())})"
            )
        path = bundled
    try:
        return ScenarioSpec.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, str(path))) from exc


def default_dataset_dir() -> Path | None:
    """``$OUIE_DATASET_DIR``, else ``<shared>/data/dev`` beside the checkout, when present."""
    explicit = os.environ.get("OUIE_DATASET_DIR")
    if explicit:
        return Path(explicit)
    candidates: list[Path] = []
    shared = os.environ.get("OUIE_SHARED_DIR")
    if shared:
        candidates.append(Path(shared) / "data" / "dev")
    candidates.append(Path.cwd().parent / "shared" / "data" / "dev")
    candidates.append(Path(__file__).resolve().parents[3].parent / "shared" / "data" / "dev")
    for candidate in candidates:
        if (candidate / "labels.csv").is_file():
            return candidate
    return None


# --- positions ----------------------------------------------------------------------------


def along_street(
    site: Site, street: str, along_m: float, side_m: float
) -> tuple[float, float, float]:
    """(x, y, heading_rad) at ``along_m`` on a street, ``side_m`` to the left."""
    line = site.street(street).line
    remaining = along_m
    for (x0, y0), (x1, y1) in itertools.pairwise(line):
        seg = math.hypot(x1 - x0, y1 - y0)
        if remaining <= seg or (x1, y1) == line[-1]:
            f = min(remaining / seg, 1.0) if seg > 0 else 0.0
            heading = math.atan2(y1 - y0, x1 - x0)
            x = x0 + f * (x1 - x0) - side_m * math.sin(heading)
            y = y0 + f * (y1 - y0) + side_m * math.cos(heading)
            return x, y, heading
        remaining -= seg
    raise ConfigError(f"street {street!r} has no segment")


def event_positions(site: Site, event: EventSpec) -> list[tuple[float, float]]:
    count = event.repeat.count if event.repeat else 1
    step = event.repeat.step_m if event.repeat else 0.0
    pos = event.position
    points: list[tuple[float, float]] = []
    for i in range(count):
        if isinstance(pos, AlongStreet):
            x, y, _ = along_street(site, pos.street, pos.along_m + i * step, pos.side_m)
        else:
            x0, y0 = (pos.x, pos.y) if isinstance(pos, XY) else site.to_xy(pos.lat, pos.lon)
            heading = math.radians(event.repeat.heading_deg if event.repeat else 90.0)
            x, y = x0 + i * step * math.sin(heading), y0 + i * step * math.cos(heading)
        points.append((x, y))
    return points


# --- sources ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSignal:
    signal: F64  # loudest 50 ms RMS = 1.0
    onset_s: float  # where the sound starts inside ``signal``
    description: str
    synthetic: bool
    trimmed_at_s: float | None = None  # where a second bang was cut off, clip seconds


def signal_onset_s(signal: F64, rate: int, rel_db: float = -20.0) -> float:
    """Start of the first 5 ms frame within ``rel_db`` of the loudest one."""
    step = max(1, round(0.005 * rate))
    n = signal.size // step
    if n == 0:
        return 0.0
    power = np.mean(np.square(signal[: n * step].reshape(n, step)), axis=1)
    above = np.nonzero(power >= power.max() * 10.0 ** (rel_db / 10.0))[0]
    return float(above[0] * step / rate)


class SourceLibrary:
    """Resolves event ``source`` strings to signals at the render rate."""

    def __init__(self, rate: int, dataset_dir: Path | None, folds: list[int] | None = None) -> None:
        self.rate = rate
        self.dataset_dir = dataset_dir
        self.clips: list[Clip] = []
        if dataset_dir is not None:
            try:
                self.clips = load_dataset(dataset_dir)
            except DatasetError:
                self.clips = []
        if folds is not None:
            self.clips = [c for c in self.clips if c.fold in set(folds)]

    def dataset_clips(self, label: str) -> list[Clip]:
        return [c for c in self.clips if c.label == label]

    def resolve(self, source: str, label: str, rng: np.random.Generator) -> SourceSignal:
        if source == "auto":
            source = f"dataset:{label}" if self.dataset_clips(label) else self._synthetic(label)
        kind, _, arg = source.partition(":")
        if kind == "synthetic":
            signal = synthesise(arg, rng, self.rate)
            described = f"{source} ({provenance(arg)})"
            return SourceSignal(signal, signal_onset_s(signal, self.rate), described, True)
        if kind == "dataset":
            clips = self.dataset_clips(arg)
            if not clips:
                raise ConfigError(f"no {arg!r} clips in dataset {self.dataset_dir}")
            clip = clips[int(rng.integers(0, len(clips)))]
            return self._from_file(
                clip.path, f"dataset:{clip.file}", clip.label, clip.onset_s, clip.offset_s
            )
        if kind == "file":
            return self._from_file(Path(arg), source, label, None, None)
        raise ConfigError(f"unknown source {source!r}")

    @staticmethod
    def _synthetic(label: str) -> str:
        if label not in DEFAULT_KIND:
            raise ConfigError(f"no dataset clip and no synthetic source for label {label!r}")
        return f"synthetic:{DEFAULT_KIND[label]}"

    def _from_file(
        self,
        path: Path,
        description: str,
        label: str,
        onset: float | None,
        offset: float | None,
    ) -> SourceSignal:
        try:
            audio, native = read_audio(path)
        except AudioInputError as exc:
            raise ConfigError(str(exc)) from exc
        if onset is not None or offset is not None:
            lo = round((onset or 0.0) * native)
            hi = round(offset * native) if offset is not None else audio.size
            audio = audio[lo:hi]
        audio = to_rate(audio, native, self.rate)
        cut_s = second_bang_s(audio, self.rate) if is_impulsive(label) else None
        if cut_s is not None:
            audio = trim_before(audio, self.rate, cut_s)
            description = f"{description} (trimmed to first bang at {cut_s:.2f} s)"
        # normalised after the cut, so the level at 1 m is the kept bang's
        signal = normalise_loudest(audio, self.rate)
        return SourceSignal(signal, signal_onset_s(signal, self.rate), description, False, cut_s)


def second_bang_s(audio: npt.NDArray[np.float32], rate: int) -> float | None:
    """Where to cut an impulsive clip before its second bang, or None when it holds one.

    Sounding runs are the eval's event extent (``ouie.eval.extent``: 20 ms RMS frames, active
    at half way from the 10th-percentile floor to the peak), joined when closer than
    ``SECOND_BANG_GAP_S`` so a bang's own ringing stays one run.
    """
    runs = energetic_segments(audio, rate, merge_gap_s=SECOND_BANG_GAP_S)
    if len(runs) < 2:
        return None
    return max(runs[0].offset_s, runs[1].onset_s - BANG_CUT_LEAD_S)


def trim_before(audio: npt.NDArray[np.float32], rate: int, cut_s: float) -> npt.NDArray[np.float32]:
    """``audio`` up to ``cut_s`` with a linear fade-out over its last ``BANG_FADE_S``."""
    kept = np.array(audio[: round(cut_s * rate)], dtype=np.float32)
    fade = min(kept.size, max(1, round(BANG_FADE_S * rate)))
    kept[kept.size - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return kept


# --- building a run ----------------------------------------------------------------------


@dataclass(frozen=True)
class TruthEvent:
    """Ground truth of one sound event."""

    index: int
    label: str
    is_target: bool
    source: str
    synthetic: bool
    x: float
    y: float
    z: float
    lat: float
    lon: float
    onset_s: float  # true onset at the source, scenario seconds
    duration_s: float
    level_db_spl: float
    nearest_sensor: str
    nearest_onset_s: float  # true onset at the nearest sensor
    sensors_in_range: int  # sensors where it arrives ≥ 10 dB above the ambience
    note: str
    #: sensor id → true arrival (scenario s) of the direct sound, for sensors within range
    arrivals: dict[str, float]
    #: index of the scenario event it comes from: the rounds of one ``repeat`` share it
    #: (−1: its own)
    group: int = -1
    #: where its clip was cut before a second bang (clip seconds), None when played whole
    trimmed_at_s: float | None = None


@dataclass
class BuiltScenario:
    spec: ScenarioSpec
    site: Site
    sample_rate: int
    streams: list[SensorStream]
    clock_offsets_s: list[float]
    truth: list[TruthEvent]
    ambience_tracks: list[str]
    dataset_dir: Path | None
    store: ContributionStore | None = None
    clip_folds: list[int] | None = None

    @property
    def n_samples(self) -> int:
        return round(self.spec.duration_s * self.sample_rate)


def build(
    spec: ScenarioSpec,
    site: Site | None = None,
    sample_rate: int = 16000,
    dataset_dir: Path | None = None,
    clip_folds: list[int] | None = None,
) -> BuiltScenario:
    """Render every event at every sensor and set up the sensor streams (deterministic)."""
    site = site or resolve_site(spec.site)
    rng = np.random.default_rng(spec.seed)
    sensitivities = [s.sensitivity_dbfs for s in site.sensors]
    ambience_rng = np.random.default_rng([spec.seed, 1])
    readers, tracks = sensor_ambience(
        spec.ambience, sensitivities, sample_rate, ambience_rng, dataset_dir
    )
    renderer = Renderer(site, sample_rate, spec.atmosphere, spec.propagation)
    store = ContributionStore(renderer)
    streams = [SensorStream(reader, store, k) for k, reader in enumerate(readers)]
    offsets = [
        float(x) for x in rng.normal(0.0, spec.clock_jitter_ms / 1000.0, size=len(site.sensors))
    ]
    library = SourceLibrary(sample_rate, dataset_dir, clip_folds)
    truth: list[TruthEvent] = []
    for e_index, event in enumerate(spec.events):
        level = event.level_db_spl or DEFAULT_LEVEL_DB_SPL.get(event.label, 100.0)
        positions = event_positions(site, event)
        for i, (x, y) in enumerate(positions):
            at = event.at_s + (i * event.repeat.every_s if event.repeat else 0.0)
            if at >= spec.duration_s - MIN_TAIL_S:
                continue  # too late to be heard before the scenario ends (e.g. truncated)
            source_rng = np.random.default_rng([spec.seed, 2, e_index, i])
            source = library.resolve(event.source, event.label, source_rng)
            xyz = np.array([x, y, event.height_m], dtype=np.float64)
            emission = Emission(source.signal, at - source.onset_s, xyz, level)
            store.add(emission)
            heard_by = renderer.in_range(xyz) or [
                int(np.argmin(np.linalg.norm(site.sensor_xyz - xyz, axis=1)))
            ]
            arrivals = [renderer.arrival(emission, k, source.onset_s) for k in heard_by]
            nearest = min(arrivals, key=lambda a: a.time_s)
            lat, lon = site.to_latlon(x, y)
            truth.append(
                TruthEvent(
                    index=len(truth),
                    label=event.label,
                    is_target=is_target(event.label),
                    source=source.description,
                    synthetic=source.synthetic,
                    x=x,
                    y=y,
                    z=event.height_m,
                    lat=lat,
                    lon=lon,
                    onset_s=at,
                    duration_s=(source.signal.size / sample_rate) - source.onset_s,
                    level_db_spl=level,
                    nearest_sensor=site.sensors[nearest.sensor_index].id,
                    nearest_onset_s=nearest.time_s,
                    sensors_in_range=sum(
                        a.level_db_spl >= spec.ambience.level_db_spl + 10.0 for a in arrivals
                    ),
                    note=event.note,
                    arrivals={
                        site.sensors[a.sensor_index].id: a.time_s
                        for a in arrivals
                        if a.distance_m <= spec.propagation.max_range_m
                    },
                    group=e_index,
                    trimmed_at_s=source.trimmed_at_s,
                )
            )
    return BuiltScenario(
        spec, site, sample_rate, streams, offsets, truth, tracks, dataset_dir, store, clip_folds
    )
