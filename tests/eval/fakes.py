"""A deterministic classifier and a generated dataset for evaluation tests.

In the generated data a "gunshot" is a short 3 kHz tone burst and a "siren" a 1 kHz tone;
backgrounds are broadband noise. ``ToneClassifier`` scores a label 0.95 when its tone stands
out of the spectrum around it (narrow-band prominence), which a pure tone does even well
below the background's broadband level. So every event of every mixture is findable, and
the harness can be checked for exact results without any model file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from ouie.core.labels import EVENT_LABELS, EventLabel

RATE = 16000
TONES = {EventLabel.GUNSHOT: 3000.0, EventLabel.SIREN: 1000.0}


class ToneClassifier:
    model_id = "test-tone"

    def __init__(
        self,
        sample_rate: int = RATE,
        window_s: float = 0.5,
        hop_s: float = 0.25,
        prominence_db: float = 17.0,
    ) -> None:
        self.sample_rate = sample_rate
        self.window_samples = round(window_s * sample_rate)
        self.hop_samples = round(hop_s * sample_rate)
        self.prominence_db = prominence_db
        self.calls = 0

    def scores(self, frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        self.calls += 1
        spectrum = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]), axis=1)) ** 2
        out = np.full((len(frames), len(EVENT_LABELS)), 0.02, dtype=np.float32)
        bin_hz = self.sample_rate / frames.shape[1]
        for label, freq in TONES.items():
            centre = round(freq / bin_hz)
            peak = spectrum[:, centre - 3 : centre + 4].max(axis=1)
            around = np.concatenate(
                [spectrum[:, centre - 60 : centre - 5], spectrum[:, centre + 6 : centre + 61]],
                axis=1,
            )
            floor = np.median(around, axis=1) + 1e-20  # local: backgrounds are coloured
            loud = 10 * np.log10((peak + 1e-20) / floor) >= self.prominence_db
            out[:, EVENT_LABELS.index(label)] = np.where(loud, 0.95, 0.02)
        return out


def bang(rate: int = RATE) -> npt.NDArray[np.float32]:
    """The test "gunshot": 200 ms of 3 kHz, sharp attack, decaying."""
    t = np.arange(int(0.2 * rate)) / rate
    return (0.4 * np.exp(-t / 0.1) * np.sin(2 * np.pi * 3000.0 * t)).astype(np.float32)


def tone(duration_s: float, rate: int = RATE, freq: float = 1000.0) -> npt.NDArray[np.float32]:
    t = np.arange(int(duration_s * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(
    duration_s: float, rng: np.random.Generator, level: float = 0.002
) -> npt.NDArray[np.float32]:
    return (level * rng.standard_normal(int(duration_s * RATE))).astype(np.float32)


def write_dataset(root: Path, seed: int = 0) -> Path:
    """A small labels.csv dataset: gunshots, sirens, non-targets, a long ambience, speech.

    File stems are unique, so each file is its own recording group (folds by hash).
    """
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str, str, str]] = []

    def put(
        name: str, label: str, audio: npt.NDArray[np.float32], onset: str = "", offset: str = ""
    ) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), audio, RATE, subtype="PCM_16")
        rows.append((name, label, onset, offset))

    for i in range(5):
        clip = noise(2.0, rng)
        start = int((0.4 + 0.2 * i) * RATE)
        b = bang()
        clip[start : start + b.size] += b
        put(f"shots/shot{i}.wav", "gunshot", clip)
    for i in range(2):
        clip = noise(2.0, rng)
        clip[int(0.6 * RATE) : int(0.6 * RATE) + int(0.8 * RATE)] += tone(0.8)
        put(f"sirens/siren{i}.wav", "siren", clip)
    for i in range(3):
        put(f"other/dog{i}.wav", "dog_bark", noise(1.0, rng, 0.004))
    put("ambience/street.wav", "background", noise(35.0, rng, 0.003))
    put("speech/talk.wav", "speech", noise(3.0, rng, 0.003))
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "onset_s", "offset_s", "note"])
        for name, label, onset, offset in rows:
            writer.writerow([name, label, onset, offset, "synthetic"])
    return root
