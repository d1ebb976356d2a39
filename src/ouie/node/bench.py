"""``ouie bench node``: real-time factor and peak memory of the node pipeline per backend.

Each backend runs in its own child process pinned to one CPU core with one inference
thread, so RSS is that backend's alone and the RTF is a one-core figure. Two numbers per
backend: the whole streaming pipeline (resample, ring buffer, front-end, classifier, event
stage, speech guard, message building) fed 100 ms chunks, and the classifier alone on the
same windows. RTF = CPU seconds / audio seconds (lower is faster; 0.01 = 100× real time).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from ouie.config.classifiers import ClassifierSettings
from ouie.config.node import EventSettings, OnsetSettings, PrivacySettings

FloatArray = npt.NDArray[np.float32]
BENCH_RATE = 32000  # a typical sensor capture rate: exercises the resampler too


class BackendFigures(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str
    model_id: str
    rtf: float  # whole pipeline, one core
    classifier_rtf: float
    rss_mb: float  # peak resident memory of the process
    audio_s: float
    windows: int
    events: int


class NodeBench(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: str
    machine: str
    python: str
    backends: list[BackendFigures]
    skipped: dict[str, str]


LOOP_S = 10.0  # the bench loops 10 s of audio, so generating it does not inflate peak RSS


def bench_audio(duration_s: float, rate: int = BENCH_RATE, seed: int = 0) -> FloatArray:
    """Street-like noise with a shot-like impulse every 10 s, deterministic."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * rate)
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum /= np.sqrt(np.maximum(freqs, 20.0))  # pink-ish, like traffic
    audio = np.fft.irfft(spectrum, n)
    audio *= 0.02 / np.std(audio)
    for t in np.arange(5.0, duration_s - 1.0, 10.0):
        start = int(t * rate)
        length = int(0.1 * rate)
        audio[start : start + length] += (
            0.7 * np.exp(-np.arange(length) / (0.012 * rate)) * rng.standard_normal(length)
        )
    return np.clip(audio, -1, 1).astype(np.float32)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def run_one(backend: str, duration_s: float) -> BackendFigures:
    """Measure one backend in this process (called in a child by ``run``)."""
    _pin_one_core()
    from ouie.node.classifiers.registry import create_classifier
    from ouie.node.pipeline import DetectionPipeline

    classifier = create_classifier(ClassifierSettings(backend=backend, threads=1))
    loop = bench_audio(LOOP_S)
    # a sensor's pipeline: with the impulse-onset log it keeps for the hub's requests
    pipeline = DetectionPipeline(
        classifier, EventSettings(), PrivacySettings(), BENCH_RATE, onsets=OnsetSettings()
    )
    chunk = BENCH_RATE // 10
    n_chunks = int(duration_s * 10)
    pipeline.push(loop[:chunk])  # warm-up: first inference allocates
    cpu0 = time.process_time()
    events = 0
    for k in range(1, n_chunks):
        start = (k * chunk) % loop.size
        events += len(pipeline.push(loop[start : start + chunk]))
    events += len(pipeline.flush())
    pipeline_cpu = time.process_time() - cpu0
    # Peak memory of the node pipeline itself, before the classifier-only pass below.
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    audio_s = (n_chunks - 1) * chunk / BENCH_RATE

    from ouie.node.audio_io import to_rate
    from ouie.node.pipeline import window_starts

    signal = to_rate(loop, BENCH_RATE, classifier.sample_rate)
    starts = window_starts(signal.size, classifier.window_samples, classifier.hop_samples)
    windows = [signal[s : s + classifier.window_samples] for s in starts]
    cpu0 = time.process_time()
    for window in windows:
        classifier.scores(window[None, :])
    classifier_cpu = time.process_time() - cpu0
    return BackendFigures(
        backend=backend,
        model_id=classifier.model_id,
        rtf=round(pipeline_cpu / audio_s, 5),
        classifier_rtf=round(
            classifier_cpu / (len(starts) * classifier.hop_samples / classifier.sample_rate), 5
        ),
        rss_mb=round(rss_mb, 1),
        audio_s=round(audio_s, 1),
        windows=pipeline.stats.windows_scored,
        events=events,
    )


def run(backends: list[str], duration_s: float) -> NodeBench:
    figures: list[BackendFigures] = []
    skipped: dict[str, str] = {}
    for backend in backends:
        child = subprocess.run(
            [sys.executable, "-m", "ouie.node.bench", backend, str(duration_s)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            lines = (child.stderr.strip() or child.stdout.strip() or "failed").splitlines()
            skipped[backend] = lines[-1]
            continue
        figures.append(BackendFigures.model_validate_json(child.stdout.strip().splitlines()[-1]))
    return NodeBench(
        date=datetime.now(UTC).strftime("%Y-%m-%d"),
        machine=f"{cpu_model()}, {os.cpu_count()} CPUs, {platform.machine()}",
        python=platform.python_version(),
        backends=figures,
        skipped=skipped,
    )


def write_json(result: NodeBench, path: Path) -> None:
    path.write_text(json.dumps(result.model_dump(), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    try:
        measured = run_one(sys.argv[1], float(sys.argv[2]))
    except Exception as exc:  # reported to the parent as a skipped backend, with the reason
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    print(measured.model_dump_json())
