"""Augmented copies of a dataset in the audio domain, for the teachers to label again.

    python -m ouie.train.augment_set --data DIR [--data DIR ...] --out DIR [--copies N]

The student learns what the teachers say about audio, so the most useful augmentation is
one the teachers hear too: each clip is re-rendered ``--copies`` times through a random
recording chain and then scored by YAMNet and mn04 like any clip (``ouie.train.teachers``).
The chain models what differs between recording sources and between a near and a far
sensor on a street:

* **near**: gain until the capture saturates, hard or soft clipping (a shot 10–30 m from a
  lamp-post microphone reaches 0 dBFS);
* **far / cheap microphone**: low-pass 2.5–8 kHz (one source was recorded at 8 kHz),
  high-pass 80–500 Hz, a random peaking EQ, exponential-decay reverberation;
* **street**: ouie's own generated traffic or steady noise under the clip at −6…+15 dB
  event-to-background ratio (never another source's audio, so that leaving a source out
  leaves all of its audio out), and a random level.

Each copy keeps its original's ``label`` and ``source_repo`` (``ouie eval --split source``
and ``--exclude-source`` treat it as that source), and is written as 16 kHz FLAC outside the
repository with a ``labels.csv``; nothing here is committed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy.signal import butter, sosfilt

from ouie.eval.dataset import load_dataset
from ouie.train import synth
from ouie.train.compact_data import active_rms, reverb, rms
from ouie.train.teachers import SAMPLE_RATE, load_clip

FloatArray = npt.NDArray[np.float32]
MAX_SECONDS = 12.0  # long ambience: a random excerpt is enough


def _filter(audio: FloatArray, kind: str, cutoff: float | list[float], order: int) -> FloatArray:
    sos = butter(order, cutoff, btype=kind, fs=SAMPLE_RATE, output="sos")
    return np.asarray(sosfilt(sos, audio), dtype=np.float32)


def peaking_eq(audio: FloatArray, rng: np.random.Generator) -> FloatArray:
    """A ±9 dB boost or cut over a random octave band."""
    centre = float(np.exp(rng.uniform(np.log(200.0), np.log(5000.0))))
    band = _filter(audio, "bandpass", [centre / 1.41, min(centre * 1.41, 7900.0)], 2)
    gain = 10 ** (rng.uniform(-9.0, 9.0) / 20.0) - 1.0
    return np.asarray(audio + gain * band, dtype=np.float32)


def chain(audio: FloatArray, rng: np.random.Generator) -> tuple[FloatArray, str]:
    """One random recording chain; returns the audio and a short name of what was done."""
    steps: list[str] = []
    if len(audio) > MAX_SECONDS * SAMPLE_RATE:
        start = int(rng.integers(0, len(audio) - int(MAX_SECONDS * SAMPLE_RATE)))
        audio = audio[start : start + int(MAX_SECONDS * SAMPLE_RATE)]
    near = rng.random() < 0.35
    if not near and rng.random() < 0.4:
        audio = reverb(audio, rng)
        steps.append("reverb")
    if not near and rng.random() < 0.5:
        audio = _filter(audio, "lowpass", rng.uniform(2500.0, 7800.0), int(rng.integers(2, 6)))
        steps.append("lowpass")
    if rng.random() < 0.3:
        audio = _filter(audio, "highpass", rng.uniform(80.0, 500.0), 2)
        steps.append("highpass")
    if rng.random() < 0.5:
        audio = peaking_eq(audio, rng)
        steps.append("eq")
    if rng.random() < 0.6:
        generator = synth.traffic if rng.random() < 0.7 else synth.steady_noise
        noise = generator(rng, len(audio) / SAMPLE_RATE + 0.1)[: len(audio)]
        noise = np.pad(noise, (0, max(0, len(audio) - len(noise))))
        level_event, level_noise = active_rms(audio), rms(noise)
        if level_event > 1e-7 and level_noise > 1e-7:
            ebr = rng.uniform(-6.0, 15.0)
            audio = audio + noise * (level_event / level_noise) * 10 ** (-ebr / 20.0)
            steps.append("street")
    peak = float(np.max(np.abs(audio))) + 1e-9
    if near:
        drive = 10 ** (rng.uniform(3.0, 24.0) / 20.0)
        audio = audio * (drive / peak)
        if rng.random() < 0.5:
            audio = np.clip(audio, -1.0, 1.0)
            steps.append("hardclip")
        else:
            audio = np.tanh(audio)
            steps.append("softclip")
    else:
        audio = audio * (10 ** (rng.uniform(-40.0, -3.0) / 20.0) / peak)
    return np.asarray(audio, dtype=np.float32), "+".join(steps) or "level"


def write_augmented(data_dirs: list[Path], out_dir: Path, copies: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    for directory in data_dirs:
        with (directory / "labels.csv").open(newline="", encoding="utf-8") as handle:
            licences = {r["file"]: r.get("licence", "") or "" for r in csv.DictReader(handle)}
        for clip in load_dataset(directory):
            audio = load_clip(clip)
            for copy in range(copies):
                augmented, steps = chain(audio, rng)
                file = f"{directory.name}/{Path(clip.file).with_suffix('')}.aug{copy}.flac"
                (out_dir / file).parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(out_dir / file), augmented, SAMPLE_RATE, subtype="PCM_16")
                rows.append(
                    {
                        "file": file,
                        "label": clip.label,
                        "source_repo": clip.source_repo,
                        "licence": licences.get(clip.file, ""),
                        "augmented_from": f"{directory.name}/{clip.file}",
                        "chain": steps,
                    }
                )
    with (out_dir / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ouie.train.augment_set", description=__doc__)
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True, help="outside the repository")
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--seed", type=int, default=4242)
    args = parser.parse_args(argv)
    out = write_augmented(args.data, args.out, args.copies, args.seed)
    print(f"wrote {out / 'labels.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
