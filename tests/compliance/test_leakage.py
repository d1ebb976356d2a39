"""``ouie eval privacy`` and the file watch behind "no audio is ever written".

The node runs for real (``NodeRuntime`` over the real pipeline and speech guard, real message
encoding); only the classifier is the deterministic stand-in of ``tests/node/fakes.py``, so
that the tests know exactly when it fires.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from ouie.cli import app
from ouie.compliance import leakage
from ouie.compliance.fswatch import AUDIO_SUFFIXES, FileWatch, audio_magic, owner_of
from ouie.compliance.leakage import (
    FADE_S,
    SPEECH_NOISE_RATIOS_DB,
    Recording,
    _Feed,
    _Span,
    build_recordings,
    run_privacy_eval,
)
from ouie.core.labels import EventLabel
from ouie.eval.noise import RATE, street_noise
from tests.node.fakes import LoudnessClassifier

REQUIRED_KEYS = {
    "events_on_speech",
    "speech_seconds",
    "suppression_rate",
    "bytes_per_hour",
    "largest_message_bytes",
    "audio_files_written",
}


# --------------------------------------------------------------------------- the file watch


@pytest.mark.parametrize("method", ["auto", "inotify"])
def test_file_watch_catches_every_way_to_write_audio(tmp_path: Path, method: str) -> None:
    root = tmp_path / "watched"
    root.mkdir()
    silence = np.zeros(160, dtype=np.float32)
    with FileWatch([root], method=method) as watch:
        sf.write(root / "plain.wav", silence, RATE)
        sf.write(root / "brief.flac", silence, RATE)
        (root / "brief.flac").unlink()  # written and deleted at once
        sf.write(root / "disguised.dat", silence, RATE, format="WAV")  # wrong name
        (root / "new" / "deeper").mkdir(parents=True)  # folders made during the run
        np.save(root / "new" / "deeper" / "frames", np.zeros((4, 64), dtype=np.float32))
        (root / "events.jsonl").write_text('{"kind": "event"}\n')  # metadata: fine
        time.sleep(0.3)
    result = watch.result
    assert result is not None
    names = {Path(f.path).name for f in result.audio_files}
    assert names == {"plain.wav", "brief.flac", "disguised.dat", "frames.npy"}, result
    assert result.count == 4
    assert result.method.endswith("+scan")


def test_scan_alone_still_finds_files_that_remain(tmp_path: Path) -> None:
    with FileWatch([tmp_path], method="scan") as watch:
        sf.write(tmp_path / "left.ogg", np.zeros(4000, dtype=np.float32), RATE)
    assert watch.result is not None
    assert [Path(f.path).name for f in watch.result.audio_files] == ["left.ogg"]
    assert watch.result.method == "scan"


def test_files_from_before_the_run_do_not_count(tmp_path: Path) -> None:
    sf.write(tmp_path / "old.wav", np.zeros(100, dtype=np.float32), RATE)
    time.sleep(0.05)
    with FileWatch([tmp_path], method="scan", slack_s=0.0) as watch:
        pass
    assert watch.result is not None and watch.result.count == 0


@pytest.mark.needs("fanotify")
def test_fanotify_tells_our_writes_from_other_programs(tmp_path: Path) -> None:
    child = "import numpy, soundfile; soundfile.write({!r}, numpy.zeros(10), 8000)"
    with FileWatch([tmp_path], method="fanotify") as watch:
        subprocess.run(
            [sys.executable, "-c", child.format(str(tmp_path / "child.wav"))], check=True
        )
        # A detached grandchild is another program: reported, not counted.
        detached = (
            f'(sleep 0.3; {sys.executable} -c "{child.format(str(tmp_path / "other.wav"))}") &'
        )
        subprocess.run(["sh", "-c", detached], check=True)
        time.sleep(2.0)
    result = watch.result
    assert result is not None
    assert [Path(f.path).name for f in result.audio_files] == ["child.wav"]
    assert result.audio_files[0].owner == "self"
    assert [Path(f.path).name for f in result.foreign_files] == ["other.wav"]


def test_owner_of() -> None:
    assert owner_of(os.getpid()) == "self"
    assert owner_of(1) == "other"
    assert owner_of(2**22 + 12345) == "unknown"  # no such process


def test_magic_numbers() -> None:
    assert audio_magic(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "WAV"
    assert audio_magic(b"fLaC\x00") == "FLAC"
    assert audio_magic(b"\x93NUMPY\x01\x00") == "NumPy array"
    assert audio_magic(b'{"kind": "event"}') is None
    assert {".wav", ".flac", ".npy", ".pcm"} <= AUDIO_SUFFIXES


# --------------------------------------------------------------------------- recordings


def _speech_dataset(folder: Path, gain: float = 1.0) -> Path:
    """A tiny labels.csv dataset: two espeak clips labelled speech and a background."""
    folder.mkdir()
    rows = ["file,label"]
    for index, (language, text) in enumerate([("en", "Hello there"), ("fr", "Bonjour")]):
        audio, rate = leakage.espeak(text, language)
        sf.write(folder / f"speech{index}.wav", audio * gain, rate)
        rows.append(f"speech{index}.wav,speech")
    noise = street_noise(RATE * 2, np.random.default_rng(0)) * gain
    sf.write(folder / "bg.wav", noise, RATE)
    rows.append("bg.wav,background")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.mark.needs("espeak-ng")
def test_recordings_from_espeak_and_a_dataset(tmp_path: Path) -> None:
    data = _speech_dataset(tmp_path / "data")
    recordings = list(build_recordings(data, True, None, languages=["en"]))
    sets = [r.set for r in recordings]
    assert sets.count("espeak") == 6  # 3 voices × 2 styles
    assert sets.count("dataset_speech") == 2
    assert sets.count("speech_in_noise") == 8 * len(SPEECH_NOISE_RATIOS_DB)
    noisy = [r.name for r in recordings if r.set == "speech_in_noise"]
    assert {name.rsplit("+noise", 1)[1] for name in noisy} == {"+6dB", "+0dB", "-6dB"}
    assert all(r.rate == RATE and r.audio.dtype == np.float32 for r in recordings)


# --------------------------------------------------------------------------- the node run


def _espeak(languages: list[str]) -> Iterator[Recording]:
    return build_recordings(None, True, None, languages=languages)


@pytest.mark.needs("espeak-ng")
def test_node_run_on_speech_writes_no_audio(tmp_path: Path) -> None:
    """The real node over loud speech, with a classifier that fires on every loud window as
    a gunshot (impulsive, very sure: allowed over speech by design). Events flow, so the
    whole publishing path runs; nothing else may come out."""
    classifier = LoudnessClassifier(EventLabel.GUNSHOT)
    report = run_privacy_eval(
        classifier, lambda: _espeak(["en", "de"]), backend="fake", watch_roots=[tmp_path]
    )
    assert report.audio_files_written == 0, report.audio_files
    assert report.messages_with_arrays == 0
    assert report.event_messages > 0  # the publishing path was exercised
    assert report.status_messages >= 1
    assert 200 < report.largest_message_bytes < 1024
    # 12 espeak recordings (2 languages × 3 voices × 2 styles), each also at every noise ratio
    assert report.speech_recordings == 12 * (1 + len(SPEECH_NOISE_RATIOS_DB))
    assert report.speech_seconds > 60
    assert set(report.model_dump()) >= REQUIRED_KEYS
    # every event on speech is listed with its recording and its place in it
    assert report.events_on_speech > 0
    assert len(report.speech_events) == report.events_on_speech
    lengths = {r.name: r.seconds for r in _espeak(["en", "de"])}
    for event in report.speech_events:
        assert event.label == "gunshot" and event.set in leakage.SPEECH_ONLY_SETS
        base = event.recording.split("+noise")[0]
        # message times are whole milliseconds: an onset at a recording's first sample
        # may read a millisecond early
        assert base in lengths and -0.002 <= event.onset_s < lengths[base], event


@pytest.mark.needs("espeak-ng")
def test_a_classifier_that_never_fires_emits_only_heartbeats(tmp_path: Path) -> None:
    classifier = LoudnessClassifier(EventLabel.SCREAM)
    quiet = [r for r in _espeak(["it"]) if r.name.endswith(":plain")]
    for rec in quiet:  # scale below the fake's −20 dBFS trigger
        rec.audio[:] *= 0.05
    report = run_privacy_eval(
        classifier, lambda: iter(quiet), backend="fake", watch_roots=[tmp_path]
    )
    assert report.events_on_speech == 0
    assert report.speech_candidates == 0 and report.suppression_rate is None
    assert report.event_messages == 0
    # one heartbeat per 30 s of audio, about 480 bytes each
    assert 30_000 < report.bytes_per_hour < 100_000
    assert report.passed


@pytest.mark.needs("espeak-ng")
def test_non_impulsive_events_over_loud_speech_are_all_suppressed(tmp_path: Path) -> None:
    classifier = LoudnessClassifier(EventLabel.SCREAM)
    report = run_privacy_eval(
        classifier, lambda: _espeak(["en", "fr"]), backend="fake", watch_roots=[tmp_path]
    )
    assert report.speech_candidates > 0
    assert report.events_on_speech == 0, report.sets


@pytest.mark.needs("espeak-ng")
def test_eval_privacy_cli_writes_the_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _speech_dataset(tmp_path / "data", gain=0.05)  # below the fake's trigger level
    watched = tmp_path / "watched"
    watched.mkdir()
    from ouie.compliance import cli as privacy_cli

    monkeypatch.setattr(
        privacy_cli,
        "_classifier",
        lambda settings, backend, model_dir: (LoudnessClassifier(EventLabel.SIREN), "fake"),
    )
    out = tmp_path / "privacy.json"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "privacy",
            "--data",
            str(data),
            "--no-espeak",
            "--json",
            str(out),
            "--watch",
            str(watched),
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert set(figures) >= REQUIRED_KEYS
    assert figures["audio_files_written"] == 0
    assert figures["sets"]["dataset_speech"]["recordings"] == 2
    assert figures["backgrounds_used"] + figures["backgrounds_rejected"] == 1
    assert "audio files written: 0" in result.output


def test_recordings_fade_in_and_out_so_the_stream_has_no_step() -> None:
    loud = Recording("a", "speech_in_noise", np.ones(RATE, np.float32), RATE)
    feed = _Feed(iter([loud]), gap_s=0.5)

    async def stream() -> np.ndarray:
        return np.concatenate([chunk.samples async for chunk in feed.chunks()])

    audio = asyncio.run(stream())
    assert audio[0] == 0.0 and np.all(np.diff(audio[:1000]) >= 0)  # no jump from the gap
    assert np.all(audio[round(FADE_S * RATE) : RATE - round(FADE_S * RATE)] == 1.0)
    assert np.all(audio[RATE:] == 0.0) and audio.size == RATE + RATE // 2
    assert np.all(loud.audio == 1.0)  # the recording itself is not changed


def test_an_event_belongs_to_the_recording_its_midpoint_falls_in() -> None:
    feed = _Feed(iter(()))
    rec = Recording("a", "speech_in_noise", np.zeros(10, np.float32), RATE)
    feed.spans = [_Span(rec, 0.0, 10.9, 0), _Span(rec, 10.9, 20.0, 0)]
    # an onset rounded to the millisecond just before the second recording starts
    assert feed.span_of_event(10.8999, 11.4) is feed.spans[1]
    assert feed.span_of_event(5.0, 5.2) is feed.spans[0]
    assert feed.span_of_event(5.0, 4.0) is feed.spans[0]  # a bad offset falls back to the onset
