"""What each sensor of a twin scenario hears of each event, and what each backend makes of it.

    python scripts/twin_sensor_scores.py [SCENARIO] [--backend compact --backend yamnet ...]
        [--no-dataset] [--clip-folds 0]

Renders the scenario exactly as ``ouie sim run`` does (``ouie.sim.scenario.build``: the same
seed, clips, propagation, ambience and ADC), then for every event and every sensor in range
takes 2 s of that sensor's stream from 0.5 s before the sound arrives and prints the
distance, the peak level, the share of samples at full scale (clipping) and, per backend,
the best score of the event's own label over the windows of ``detect_offline`` and the best
label. The first block gives each event's source clip as recorded (peak-normalised to
-6 dBFS), so the loss on the way to the lamp post can be read off. A measurement for
docs/twin.md, not a test; needs ../shared for the dev clips.
"""

from __future__ import annotations

import argparse

import numpy as np

from ouie.config.node import NodeSettings
from ouie.core.labels import EVENT_LABELS
from ouie.eval.alarm_replay import score_clip
from ouie.node.classifiers.base import Classifier
from ouie.node.classifiers.registry import backend_settings, create_classifier
from ouie.sim.scenario import SourceLibrary, build, default_dataset_dir, load_scenario

WINDOW_BEFORE_S, WINDOW_S = 0.5, 2.0


def describe(signal: np.ndarray, rate: int, label: str, classifiers: dict[str, Classifier]) -> str:
    parts = []
    for name, classifier in classifiers.items():
        best = score_clip(signal.astype(np.float32), rate, classifier).rows.max(axis=0)
        top = int(np.argmax(best))
        own = best[EVENT_LABELS.index(label)] if label in EVENT_LABELS else float("nan")
        parts.append(f"{name} {own:.2f} (top {EVENT_LABELS[top].value} {best[top]:.2f})")
    return " | ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="shooting")
    parser.add_argument("--backend", action="append", default=[])
    parser.add_argument("--no-dataset", action="store_true")
    parser.add_argument("--clip-folds", default="0")
    args = parser.parse_args()
    spec = load_scenario(args.scenario)
    dataset = None if args.no_dataset else default_dataset_dir()
    folds = None if args.clip_folds == "all" else [int(x) for x in args.clip_folds.split(",")]
    built = build(spec, dataset_dir=dataset, clip_folds=folds)
    rate = built.sample_rate
    classifiers = {
        name: create_classifier(
            backend_settings(NodeSettings().classifier.model_copy(update={"backend": name}))
        )
        for name in (args.backend or ["compact", "yamnet", "mn04"])
    }
    print(f"{spec.name}: dataset {dataset}, clip folds {args.clip_folds}")
    library = SourceLibrary(rate, dataset, folds)
    print("as recorded (peak -6 dBFS):")
    for e_index, event in enumerate(spec.events):
        for i in range(event.repeat.count if event.repeat else 1):
            source = library.resolve(
                event.source, event.label, np.random.default_rng([spec.seed, 2, e_index, i])
            )
            signal = source.signal / max(float(np.abs(source.signal).max()), 1e-9) * 0.5
            scores = describe(signal, rate, event.label, classifiers)
            print(f"  {source.description[:58]:58s} {scores}")
    ids = [sensor.id for sensor in built.site.sensors]
    for truth in built.truth:
        where = f"({truth.x:.0f}, {truth.y:.0f})"
        print(f"event {truth.index}: {truth.label}, {truth.source}, at {where}")
        for sensor_id, arrival_s in sorted(truth.arrivals.items(), key=lambda kv: kv[1]):
            k = ids.index(sensor_id)
            start = int((arrival_s - WINDOW_BEFORE_S) * rate)
            block = built.streams[k].block(start, int(WINDOW_S * rate))
            peak = float(np.abs(block).max())
            clipped = float(np.mean(np.abs(block) >= 0.999))
            distance = float(
                np.linalg.norm(built.site.sensor_xyz[k][:2] - np.array([truth.x, truth.y]))
            )
            scores = describe(block, rate, truth.label, classifiers)
            print(
                f"  {sensor_id:20s} {distance:6.1f} m  peak {20 * np.log10(peak + 1e-9):6.1f} dBFS"
                f"  clipped {100 * clipped:5.2f} %  {scores}"
            )


if __name__ == "__main__":
    main()
