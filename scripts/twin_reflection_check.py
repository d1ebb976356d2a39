"""Does a model still hear dev gunshots once the twin has propagated them to a lamp post?

    python scripts/twin_reflection_check.py [--backend compact] [--model-dir BUILD] [--clips 40]

Each of ``--clips`` dev gunshots (a seeded draw) is scored raw, then through the twin's own
propagation physics (``ouie.sim.acoustics``: spreading, ISO 9613-1 air absorption, the
pavement's mirror image) from a source 1.5 m up to a microphone 4 m up, with the ground
reflection and air absorption each on or off. Every propagated copy is brought back to the
same level (loudest 50 ms at -20 dBFS RMS), so only the spectrum and the echo differ. Prints
the median and mean of the clip's best gunshot score per condition, and the share of clips
at or above 0.3. Needs ../shared (or OUIE_SHARED). A measurement for docs/eval.md, not a test.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.fft import irfft, next_fast_len, rfft, rfftfreq

from ouie.config.node import NodeSettings
from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.eval.alarm_replay import score_clip
from ouie.node.classifiers.registry import backend_settings, create_classifier
from ouie.sim.acoustics import (
    Atmosphere,
    PropagationSettings,
    propagation_paths,
    transfer_function,
)

SOURCE_HEIGHT_M, MICROPHONE_HEIGHT_M = 1.5, 4.0
LEVEL_DBFS = -20.0
# name → (distance m, ground reflection, air absorption); None: the clip as recorded
CONDITIONS: dict[str, tuple[float, bool, bool] | None] = {
    "raw": None,
    "35 m, direct path only": (35.0, False, False),
    "35 m, air absorption": (35.0, False, True),
    "35 m, ground reflection": (35.0, True, False),
    "35 m, both (the twin)": (35.0, True, True),
    "10 m, both (the twin)": (10.0, True, True),
    "100 m, both (the twin)": (100.0, True, True),
}


def propagate(
    signal: np.ndarray, rate: int, distance_m: float, ground: bool, air: bool
) -> np.ndarray:
    """The signal as the microphone hears it, re-levelled to ``LEVEL_DBFS``."""
    source = np.array([0.0, 0.0, SOURCE_HEIGHT_M])
    microphone = np.array([distance_m, 0.0, MICROPHONE_HEIGHT_M])
    atmosphere = Atmosphere()
    settings = PropagationSettings(ground_reflection=ground, air_absorption=air)
    paths = propagation_paths(source, microphone, atmosphere, settings)
    n = next_fast_len(signal.size + 4096)
    freqs = rfftfreq(n, 1.0 / rate)
    delays_s = [path.delay_s - paths[0].delay_s + 0.01 for path in paths]
    response = transfer_function(paths, delays_s, source, microphone, freqs, atmosphere, settings)
    out = irfft(rfft(signal, n) * response, n)[: signal.size + rate // 16]
    frame = int(0.05 * rate)
    loudest = np.sqrt(np.max(np.convolve(out**2, np.ones(frame) / frame, "same")))
    return np.asarray(out / max(loudest, 1e-12) * 10 ** (LEVEL_DBFS / 20), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="compact")
    parser.add_argument("--model-dir", type=Path, help="a build folder (compact only)")
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dev = Path(os.environ.get("OUIE_SHARED", "../shared")) / "data" / "dev"
    update: dict[str, object] = {"backend": args.backend}
    if args.model_dir is not None:
        update["model_dir"] = args.model_dir
    chosen = backend_settings(NodeSettings().classifier.model_copy(update=update))
    classifier = create_classifier(chosen)
    with (dev / "labels.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["label"] == "gunshot"]
    picked = np.random.default_rng(args.seed).choice(len(rows), args.clips, replace=False)
    column = EVENT_LABELS.index(EventLabel.GUNSHOT)
    best: dict[str, list[float]] = {name: [] for name in CONDITIONS}
    for index in picked:
        audio, rate = sf.read(dev / rows[index]["file"], dtype="float64", always_2d=True)
        signal = audio.mean(axis=1)
        signal = signal / max(float(np.abs(signal).max()), 1e-9) * 0.5
        for name, condition in CONDITIONS.items():
            heard = (
                signal.astype(np.float32)
                if condition is None
                else propagate(signal, rate, *condition)
            )
            best[name].append(float(score_clip(heard, rate, classifier).rows[:, column].max()))
    print(f"{classifier.model_id}: best gunshot score of {args.clips} dev gunshots")
    for name, scores in best.items():
        s = np.array(scores)
        print(
            f"  {name:26s} median {np.median(s):.3f}  mean {s.mean():.3f}  "
            f">= 0.3: {(s >= 0.3).mean():.2f}"
        )


if __name__ == "__main__":
    main()
