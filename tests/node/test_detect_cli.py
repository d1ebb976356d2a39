"""``ouie detect`` on bad input: truncated files fail unless allowed, nothing ends in a
traceback, and memory stays bounded for a long file (issue 18, "Bad input")."""

from __future__ import annotations

import json
import socket
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner, Result

from ouie.cli import app
from ouie.config.node import EventSettings, PrivacySettings
from ouie.node.classifiers import registry
from ouie.node.file_detect import detect_file, ogg_ends_cleanly, wav_frames
from ouie.node.pipeline import detect_offline
from tests.node.fakes import LoudnessClassifier

RATE = 16000
BANGS_S = (0.8, 3.2)  # the second is in the half a truncation cuts off
runner = CliRunner()


@pytest.fixture(autouse=True)
def loudness_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's classifier is the deterministic fake: loud windows are gunshots."""
    monkeypatch.setattr(registry, "create_classifier", lambda _settings: LoudnessClassifier())


def ouie(*args: str | Path) -> Result:
    return runner.invoke(app, ["detect", "--format", "jsonl", *map(str, args)])


def bangs(seconds: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(7)
    audio = (rng.standard_normal(int(seconds * RATE)) * 0.003).astype(np.float32)
    for onset in BANGS_S:
        start, n = int(onset * RATE), int(0.08 * RATE)
        decay = np.exp(-np.arange(n) / (0.01 * RATE)).astype(np.float32)
        audio[start : start + n] += 0.8 * decay * rng.standard_normal(n).astype(np.float32)
    return audio


def recording(folder: Path, suffix: str) -> Path:
    path = folder / f"bangs{suffix}"
    sf.write(path, bangs(), RATE, subtype="PCM_16" if suffix == ".wav" else None)
    return path


def cut(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    out = path.with_name(f"cut-{path.name}")
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def onsets(result: Result) -> list[float]:
    return [json.loads(line)["onset_s"] for line in result.stdout.splitlines() if line]


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_whole_file_lists_its_events(tmp_path: Path) -> None:
    result = ouie(recording(tmp_path, ".wav"))
    assert result.exit_code == 0, result.output
    assert [round(t, 1) for t in onsets(result)] == list(BANGS_S)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_a_truncated_file_fails_unless_allowed(tmp_path: Path, suffix: str) -> None:
    truncated = cut(recording(tmp_path, suffix))
    refused = ouie(truncated)
    no_traceback(refused)
    assert refused.exit_code == 1
    assert "truncated" in refused.stderr and "--allow-truncated" in refused.stderr
    assert refused.stdout == ""  # half a recording must not pass for a quiet one
    allowed = ouie("--allow-truncated", truncated)
    no_traceback(allowed)
    assert allowed.exit_code == 0, allowed.output
    assert "warning" in allowed.stderr and "truncated" in allowed.stderr
    assert [round(t, 1) for t in onsets(allowed)] == [BANGS_S[0]]  # the readable part


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    good = recording(tmp_path, ".wav")
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    result = ouie(bad, good)
    no_traceback(result)
    assert result.exit_code == 1
    assert len(onsets(result)) == 2 and "notes.wav" in result.stderr


def _empty(folder: Path) -> Path:
    (path := folder / "empty.wav").touch()
    return path


def _text(folder: Path) -> Path:
    (path := folder / "text.flac").write_text("hello")
    return path


def _header_only(folder: Path) -> Path:
    path = folder / "header.wav"
    path.write_bytes(recording(folder, ".wav").read_bytes()[:44])
    return path


def _garbage_header(folder: Path) -> Path:
    # a RIFF header with absurd channel count and rate, then noise
    fmt = struct.pack("<IHHIIHH", 16, 1, 65535, 4_000_000_000, 0, 0, 16)
    path = folder / "absurd.wav"
    path.write_bytes(b"RIFF\xff\xff\xff\xffWAVEfmt " + fmt + b"data\x10\x00\x00\x00" + b"\x01" * 16)
    return path


def _no_audio_folder(folder: Path) -> Path:
    (path := folder / "nothing-here").mkdir()
    (path / "readme.txt").write_text("no audio")
    return path


def _socket(folder: Path) -> Path:
    # a file no process can read, whoever runs the test (root reads any regular file)
    path = folder / "socket.wav"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    return path


def _missing(folder: Path) -> Path:
    return folder / "missing.wav"


def _markup_name(folder: Path) -> Path:
    (path := folder / "[red]x.wav").write_text("rich markup in a name")
    return path


@pytest.mark.parametrize(
    "make",
    [
        _empty,
        _text,
        _header_only,
        _garbage_header,
        _no_audio_folder,
        _socket,
        _missing,
        _markup_name,
        lambda _folder: Path("/dev/null"),
    ],
    ids=[
        "empty",
        "not-audio",
        "header-only",
        "absurd-header",
        "folder-without-audio",
        "unreadable",
        "missing",
        "markup-in-name",
        "device",
    ],
)
def test_no_input_ends_in_a_traceback(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    path = make(tmp_path)
    result = ouie(path)
    no_traceback(result)
    assert result.exit_code in {1, 2}
    assert result.stderr.startswith("error:"), result.output
    assert path.name in result.stderr.replace("\n", "")  # named as it is, markup and all
    assert result.stdout == ""


def test_a_folder_is_expanded(tmp_path: Path) -> None:
    folder = tmp_path / "day"
    folder.mkdir()
    for name in ("a.wav", "b.flac"):
        sf.write(folder / name, bangs(), RATE)
    result = ouie(folder)
    assert result.exit_code == 0, result.output
    assert len(onsets(result)) == 4


def test_block_reading_gives_the_offline_events(tmp_path: Path) -> None:
    audio = np.concatenate([bangs(), bangs(), bangs()])  # 12 s: several blocks
    path = tmp_path / "long.wav"
    sf.write(path, audio, RATE, subtype="FLOAT")
    streamed = detect_file(path, LoudnessClassifier(), EventSettings(), PrivacySettings())
    whole = detect_offline(audio, RATE, LoudnessClassifier(), EventSettings(), PrivacySettings())
    assert streamed.truncation is None and streamed.duration_s == pytest.approx(12.0)
    assert [(e.label, e.onset_s, e.offset_s) for e in streamed.events] == [
        (e.label, e.onset_s, e.offset_s) for e in whole
    ]
    assert len(whole) == 6


def sparse_wav(path: Path, seconds: float, data_size: int | None = None) -> Path:
    """A silent PCM16 WAV of any length that takes no disk space (a sparse file)."""
    data = int(seconds * RATE) * 2
    with path.open("wb") as handle:
        handle.write(b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE")
        handle.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, RATE, RATE * 2, 2, 16))
        handle.write(b"data" + struct.pack("<I", data if data_size is None else data_size))
        handle.truncate(44 + data)
    return path


@pytest.mark.slow
def test_memory_stays_bounded_for_an_hour_long_file(tmp_path: Path) -> None:
    """An hour is 230 MB as float32; read in blocks, the peak stays a few MB."""
    path = sparse_wav(tmp_path / "hour.wav", 3600.0)
    tracemalloc.start()
    try:
        result = detect_file(path, LoudnessClassifier(), EventSettings(), PrivacySettings())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.duration_s == pytest.approx(3600.0) and result.truncation is None
    assert peak < 32e6, f"peak {peak / 1e6:.0f} MB"


def test_truncation_checks_read_the_headers(tmp_path: Path) -> None:
    whole = recording(tmp_path, ".wav")
    length = wav_frames(whole)
    assert length is not None and length.declared_frames == length.present_frames == 4 * RATE
    half = wav_frames(cut(whole))
    assert half is not None and half.present_frames < half.declared_frames
    # a WAV written to a pipe declares no length: it cannot be called truncated
    assert wav_frames(sparse_wav(tmp_path / "piped.wav", 1.0, data_size=0xFFFFFFFF)) is None
    assert wav_frames(recording(tmp_path, ".flac")) is None
    ogg = recording(tmp_path, ".ogg")
    assert ogg_ends_cleanly(ogg) is True
    assert ogg_ends_cleanly(cut(ogg)) is False
    assert ogg_ends_cleanly(whole) is None
