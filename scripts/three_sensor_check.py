"""How the locator treats sounds heard by exactly three sensors (docs/benchmarks.md, hub).

    python scripts/three_sensor_check.py [--sounds 400] [--jitter-ms 1]

Sensors and source drawn in a 150 m square (the geometry of tests/hub/test_locate.py), onsets
from travel time plus Gaussian jitter. Prints how many sounds get a point and how many an area,
the points' median error, how many are more than 10 m off, and how often each point's 95 %
ellipse and each area hold the source. Uses only ``ouie.hub.locate.locate``, so the same
script measures any version of the locator.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from ouie.hub.locate import Observation, locate

C = 340.0
MOUNT_M = 4.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sounds", type=int, default=400)
    parser.add_argument("--jitter-ms", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    jitter = args.jitter_ms / 1000.0
    point_errors: list[float] = []
    points_covered = areas = areas_covered = 0
    elapsed = 0.0
    for _ in range(args.sounds):
        sensors = rng.uniform(-75.0, 75.0, size=(3, 2))
        source = rng.uniform(-60.0, 60.0, size=2)
        observations = [
            Observation(
                float(x),
                float(y),
                MOUNT_M,
                1000.0
                + math.hypot(x - source[0], y - source[1], MOUNT_M - 1.0) / C
                + float(rng.normal(0.0, jitter)),
                0.0,
            )
            for x, y in sensors
        ]
        began = time.perf_counter()
        fix = locate(observations, C, onset_sigma_s=max(jitter, 1e-4), source_up=1.0)
        elapsed += time.perf_counter() - began
        error = math.hypot(fix.east - source[0], fix.north - source[1])
        if fix.method == "tdoa":
            point_errors.append(error)
            points_covered += error <= fix.radius_m
        else:
            areas += 1
            areas_covered += error <= fix.radius_m
    errors = np.array(point_errors)
    head = f"{args.sounds} sounds, {args.jitter_ms:g} ms jitter"
    print(f"{head}: {len(errors)} points, {areas} areas")
    if len(errors):
        print(
            f"points: median error {np.median(errors):.2f} m, {int(np.sum(errors > 10.0))} more "
            f"than 10 m off, {points_covered / len(errors):.0%} inside their 95 % ellipse"
        )
    if areas:
        print(f"areas: {areas_covered / areas:.0%} hold their source")
    print(f"locate: {1000.0 * elapsed / args.sounds:.2f} ms per sound")


if __name__ == "__main__":
    main()
