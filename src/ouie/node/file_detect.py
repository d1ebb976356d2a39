"""``ouie detect`` on one file: decoded block by block, and checked for truncation.

Memory stays bounded for a recording of any length (issue 18: a 2 h file was read whole,
1.28 GB RSS, and a ``MemoryError`` traceback under a 1.5 GB limit). The file is decoded
``BLOCK_S`` at a time, never more than ``MAX_BLOCK_SAMPLES`` samples over all channels
whatever rate and channel count its header claims, into the streaming
``DetectionPipeline`` a sensor runs; its ring buffer keeps a few seconds. The events are
those of ``detect_offline`` (``tests/node/test_pipeline.py`` holds the two paths equal).

A file that ends before its header says is *truncated*, and says so instead of passing for
a short recording (issue 18: a truncated WAV exited 0 with no warning):

* WAV: the ``data`` chunk declares more bytes than the file holds (``wav_frames``);
* Ogg: the last page lacks the end-of-stream flag, or is cut short (``ogg_ends_cleanly``);
* any format: decoding fails part-way (a FLAC "lost sync"), or yields fewer frames than
  the header's count (FLAC STREAMINFO).

Audio read here goes into the pipeline and nowhere else.
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from ouie.config.node import EventSettings, PrivacySettings
from ouie.node.audio_io import AudioInputError, FloatArray, mix_down
from ouie.node.classifiers.base import Classifier
from ouie.node.pipeline import DetectedEvent, DetectionPipeline
from ouie.privacy.speech_guard import SpeechGuard

BLOCK_S = 4.0
#: Samples over all channels per block: 4 MB of float32, whatever the header claims.
MAX_BLOCK_SAMPLES = 1 << 20
#: How far from the end the last Ogg page is looked for (a page is at most 65 307 bytes).
OGG_TAIL_BYTES = 1 << 17


@dataclass(frozen=True)
class Truncation:
    """How much of a file is missing; ``expected_s`` is ``None`` when the header gives no
    length (an Ogg stream cut short) or decoding failed before its end."""

    readable_s: float
    expected_s: float | None
    detail: str

    def describe(self) -> str:
        if self.expected_s is not None:
            return (
                f"truncated: the header promises {self.expected_s:.2f} s, the file holds "
                f"{self.readable_s:.2f} s ({self.detail})"
            )
        return f"truncated after {self.readable_s:.2f} s ({self.detail})"


@dataclass(frozen=True)
class FileDetection:
    events: list[DetectedEvent]
    duration_s: float
    truncation: Truncation | None


@dataclass(frozen=True)
class WavLength:
    declared_frames: int
    present_frames: int


def wav_frames(path: Path) -> WavLength | None:
    """Frames a RIFF/WAVE header declares and frames the file holds; ``None`` when it is
    not a plain WAV, or declares no length (a WAV written to a pipe: size 0 or 0xFFFFFFFF)."""
    with path.open("rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in {b"RIFF", b"RIFX"}:
            return None
        order = "<" if head[:4] == b"RIFF" else ">"
        size = path.stat().st_size
        block_align = 0
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk, length = struct.unpack(f"{order}4sI", handle.read(8))
            if chunk == b"fmt ":
                fmt = handle.read(16)
                if len(fmt) < 16:
                    return None
                block_align = struct.unpack(f"{order}H", fmt[12:14])[0]
            elif chunk == b"data":
                if block_align == 0 or length in {0, 0xFFFFFFFF}:
                    return None
                present = max(0, size - offset - 8)
                return WavLength(length // block_align, min(length, present) // block_align)
            offset += 8 + length + (length & 1)
    return None


def ogg_ends_cleanly(path: Path) -> bool | None:
    """Whether the last Ogg page is whole and flagged end-of-stream; ``None``: not Ogg."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        if handle.read(4) != b"OggS":
            return None
        start = max(0, size - OGG_TAIL_BYTES)
        handle.seek(start)
        tail = handle.read()
    at = tail.rfind(b"OggS")
    if at < 0 or len(tail) < at + 27:
        return False
    flags, segments = tail[at + 5], tail[at + 26]
    table = tail[at + 27 : at + 27 + segments]
    if len(table) < segments:
        return False
    return bool(flags & 0x04) and at + 27 + segments + sum(table) <= len(tail)


@dataclass(frozen=True)
class AudioHeader:
    rate: int
    channels: int
    frames: int  # as libsndfile reads the header (a WAV's: what the file holds)


def _wav_truncation(path: Path, rate: int) -> Truncation | None:
    wav = wav_frames(path)
    if wav is None or wav.present_frames >= wav.declared_frames:
        return None
    return Truncation(
        wav.present_frames / rate,
        wav.declared_frames / rate,
        f"WAV data chunk of {wav.declared_frames} frames, {wav.present_frames} present",
    )


def open_info(path: Path) -> AudioHeader:
    """``soundfile.info`` with every failure as one ``AudioInputError`` line."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise AudioInputError(f"{path}: no such file") from exc
    except OSError as exc:
        raise AudioInputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(mode):
        raise AudioInputError(f"{path}: is a directory with no WAV/FLAC/OGG files")
    if not stat.S_ISREG(mode):
        raise AudioInputError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise AudioInputError(f"{path}: is empty")
    try:
        info = sf.info(str(path))
    except sf.LibsndfileError as exc:
        reason = str(exc).split(":")[-1].strip() or "unreadable"
        raise AudioInputError(f"{path}: not a readable WAV/FLAC/OGG file ({reason})") from exc
    except (RuntimeError, TypeError, ValueError, OSError) as exc:
        raise AudioInputError(f"{path}: not a readable audio file ({exc})") from exc
    header = AudioHeader(int(info.samplerate), int(info.channels), int(info.frames))
    if header.rate <= 0 or header.channels <= 0:
        raise AudioInputError(f"{path}: header gives {header.rate} Hz, {header.channels} ch")
    return header


def _blocks(path: Path, header: AudioHeader) -> Iterator[FloatArray]:
    """Mono blocks of the file. When decoding fails part-way, the failing block is read
    again in small pieces up to the damage, so a cut-off FLAC keeps what precedes the cut
    (libsndfile drops a whole read that fails), and the error is raised after them."""
    frames = max(1, min(round(BLOCK_S * header.rate), MAX_BLOCK_SAMPLES // header.channels))
    with sf.SoundFile(str(path)) as handle:
        while True:
            start = handle.tell()
            try:
                data = handle.read(frames, dtype="float32", always_2d=True)
            except sf.LibsndfileError:
                handle.seek(start)
                piece = max(1, frames // 40)
                while True:
                    try:
                        data = handle.read(piece, dtype="float32", always_2d=True)
                    except sf.LibsndfileError:
                        break
                    if not len(data):
                        break
                    yield mix_down(data)
                raise
            if not len(data):
                return
            yield mix_down(data)


def detect_file(
    path: Path,
    classifier: Classifier,
    events: EventSettings,
    privacy: PrivacySettings,
    guard: SpeechGuard | None = None,
    ring_buffer_s: float = 4.0,
) -> FileDetection:
    """Events of one audio file, decoded in blocks; raises ``AudioInputError`` (one line)
    for a file that cannot be read at all. A truncated file yields the events of its
    readable part and a ``Truncation``: the caller decides whether that is acceptable."""
    header = open_info(path)
    rate = header.rate
    try:
        truncation = _wav_truncation(path, rate)
        ogg_whole = ogg_ends_cleanly(path)
    except OSError as exc:
        raise AudioInputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    # The ring must hold a whole block on top of what a sensor keeps, as a block is pushed
    # at once (a sensor pushes 0.1 s chunks).
    pipeline = DetectionPipeline(
        classifier, events, privacy, rate, ring_buffer_s=ring_buffer_s + BLOCK_S, guard=guard
    )
    found: list[DetectedEvent] = []
    decoded = 0
    failure: str | None = None
    try:
        for block in _blocks(path, header):
            decoded += block.size
            found.extend(pipeline.push(block))
    except sf.LibsndfileError as exc:
        failure = str(exc).split(":")[-1].strip() or "decoding failed"
    except (RuntimeError, ValueError, OSError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    if decoded == 0:
        if failure is not None:
            raise AudioInputError(f"{path}: damaged or truncated, no audio decodes ({failure})")
        raise AudioInputError(f"{path}: contains no audio samples")
    found.extend(pipeline.flush())
    readable_s = decoded / rate
    if truncation is None and failure is not None:
        truncation = Truncation(readable_s, header.frames / rate, f"decoding failed: {failure}")
    elif truncation is None and 0 < decoded < header.frames:
        truncation = Truncation(
            readable_s, header.frames / rate, f"{decoded} of {header.frames} frames decoded"
        )
    elif truncation is None and ogg_whole is False:
        truncation = Truncation(readable_s, None, "the last Ogg page is cut or not the last")
    return FileDetection(found, readable_s, truncation)
