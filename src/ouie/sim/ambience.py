"""Street backgrounds for each sensor: recorded loops when available, otherwise generated.

Recorded: the long ``background`` files of a dataset directory (``labels.csv``; the dev set's
``ambience_long``/``background_long`` city, traffic, crowd, café and rain loops), chosen by
scene. Generated: traffic-like noise — a steady distant-traffic bed with the falling
spectrum of road noise plus individual vehicle pass-bys with the ``1/(1 + (vt/d)²)``
intensity envelope of a passing point source — and, for a crowd scene, a voice-band murmur.
Each sensor reads its own track at its own offset and gain, so backgrounds are uncorrelated
between sensors (neighbouring real sensors share some of their traffic; the twin does not).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from ouie.core.model_base import StrictModel
from ouie.eval.dataset import DatasetError, load_dataset
from ouie.node.audio_io import AudioInputError, read_audio, to_rate
from ouie.sim.render import AmbienceReader, db_spl_to_digital
from ouie.sim.synthetic import band, crowd

FloatArray = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

Scene = Literal["night", "street", "crowd", "rain"]

#: dataset scene names (``source_label`` of background loops) each twin scene may use.
SCENE_SOURCES: dict[str, tuple[str, ...]] = {
    "night": ("traffic", "city"),
    "street": ("city", "traffic"),
    "crowd": ("crowd", "generic-crowd-background-noise", "cafe"),
    "rain": ("rain", "gentle-rain", "heavy-rain"),
}
MIN_TRACK_S = 30.0


class AmbienceSettings(StrictModel):
    scene: Scene = "street"
    level_db_spl: float = Field(default=55.0, ge=20.0, le=100.0, description="long-term RMS")
    source: Literal["auto", "dataset", "generated"] = Field(
        default="auto", description="auto: dataset loops when a dataset is given, else generated"
    )
    sensor_spread_db: float = Field(default=2.0, ge=0.0, le=10.0, description="σ between sensors")
    vehicles_per_min: float | None = Field(default=None, ge=0.0, description="generated traffic")


@dataclass(frozen=True)
class Track:
    name: str
    samples: FloatArray  # RMS 1.0
    recorded: bool


def _unit_rms(x: F64 | FloatArray) -> FloatArray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return np.asarray(x / max(rms, 1e-12), dtype=np.float32)


def traffic_noise(
    rng: np.random.Generator, rate: int, duration_s: float, vehicles_per_min: float
) -> FloatArray:
    """Generated road-traffic background, RMS 1.0."""
    n = round(duration_s * rate)
    # Distant traffic bed: pink-ish noise, flat to ~250 Hz, falling ~5 dB/octave above.
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    shape = 1.0 / np.sqrt(1.0 + (np.maximum(freqs, 1.0) / 250.0) ** 1.7)
    shape[freqs < 25.0] *= 0.1
    bed = np.fft.irfft(spectrum * shape, n)
    bed *= 1.0 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.01, 0.03) * np.arange(n) / rate)
    out = _unit_rms(bed).astype(np.float64)
    # Pass-bys: each vehicle is noise with the envelope of a point source passing at v, d.
    count = int(rng.poisson(vehicles_per_min * duration_s / 60.0))
    t = np.arange(n) / rate
    for _ in range(count):
        t0 = rng.uniform(0.0, duration_s)
        speed = rng.uniform(8.0, 14.0)
        dist = rng.uniform(4.0, 25.0)
        lo = max(0, round((t0 - 6.0) * rate))
        hi = min(n, round((t0 + 6.0) * rate))
        if hi <= lo:
            continue
        envelope = 1.0 / np.sqrt(1.0 + ((t[lo:hi] - t0) * speed / dist) ** 2)
        car = band(rng.standard_normal(hi - lo), rate, 60.0, 3000.0, 2)
        gain = rng.uniform(1.0, 3.0) * 4.0 / dist
        out[lo:hi] += car / max(float(np.std(car)), 1e-9) * envelope * gain
    return _unit_rms(out)


def generated_tracks(
    scene: str, rng: np.random.Generator, rate: int, n_tracks: int, vehicles_per_min: float | None
) -> list[Track]:
    per_min = vehicles_per_min
    if per_min is None:
        per_min = {"night": 1.5, "street": 12.0, "crowd": 4.0, "rain": 6.0}.get(scene, 8.0)
    tracks: list[Track] = []
    for i in range(n_tracks):
        noise = traffic_noise(rng, rate, 60.0, per_min).astype(np.float64)
        if scene == "crowd":
            murmur = np.tile(crowd(rng, rate), 6)[: noise.size]
            noise = 0.5 * noise + _unit_rms(murmur).astype(np.float64)
        elif scene == "rain":
            patter = band(rng.standard_normal(noise.size), rate, 800.0, None, 2)
            noise = 0.5 * noise + _unit_rms(patter).astype(np.float64)
        tracks.append(Track(f"generated-{scene}-{i}", _unit_rms(noise), recorded=False))
    return tracks


def _scene_labels(directory: Path) -> dict[str, str]:
    """file → source_label (the scene of a background loop), when labels.csv has it."""
    with (directory / "labels.csv").open(newline="", encoding="utf-8") as handle:
        return {
            (row.get("file") or "").strip(): (row.get("source_label") or "").strip()
            for row in csv.DictReader(handle)
        }


def dataset_tracks(directory: Path, scene: str, rate: int) -> list[Track]:
    """Long background loops of ``scene`` from a dataset directory (may be empty)."""
    try:
        clips = load_dataset(directory)
    except DatasetError:
        return []
    scenes = _scene_labels(directory)
    wanted = SCENE_SOURCES.get(scene, (scene,))
    tracks: list[Track] = []
    for clip in clips:
        if clip.label not in ("background", "crowd"):
            continue
        source_label = scenes.get(clip.file, "")
        if source_label not in wanted:
            continue
        try:
            audio, native = read_audio(clip.path)
        except AudioInputError:
            continue
        if audio.size < MIN_TRACK_S * native:
            continue
        tracks.append(Track(clip.file, _unit_rms(to_rate(audio, native, rate)), recorded=True))
    return sorted(tracks, key=lambda t: t.name)


def sensor_ambience(
    settings: AmbienceSettings,
    sensitivities_dbfs: list[float],
    rate: int,
    rng: np.random.Generator,
    dataset_dir: Path | None,
) -> tuple[list[AmbienceReader], list[str]]:
    """One reader per sensor, and the names of the tracks used (for the scorecard)."""
    tracks: list[Track] = []
    if settings.source in ("auto", "dataset") and dataset_dir is not None:
        tracks = dataset_tracks(dataset_dir, settings.scene, rate)
    if settings.source == "dataset" and not tracks:
        raise ValueError(f"no {settings.scene} background loops found in {dataset_dir}")
    bed = generated_tracks(settings.scene, rng, rate, 4, settings.vehicles_per_min)
    readers: list[AmbienceReader] = []
    for k, sensitivity in enumerate(sensitivities_dbfs):
        level = settings.level_db_spl + rng.normal(0.0, settings.sensor_spread_db)
        gain = db_spl_to_digital(level, sensitivity)
        generated = bed[k % len(bed)]
        if tracks:
            # Recorded loop for character, generated traffic underneath so every sensor differs.
            recorded = tracks[k % len(tracks)]
            parts = [recorded.samples, generated.samples]
            gains = [gain * np.sqrt(0.7), gain * np.sqrt(0.3)]
        else:
            parts, gains = [generated.samples], [gain]
        offsets = [int(rng.integers(0, p.size)) for p in parts]
        readers.append(AmbienceReader(parts, offsets, [float(g) for g in gains]))
    names = sorted({t.name for t in tracks}) or sorted({t.name for t in bed})
    return readers, names
