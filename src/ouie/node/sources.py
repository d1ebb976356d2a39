"""Audio sources for a node: a file (or a folder of files), raw PCM on stdin, or a device.

Each yields mono float32 chunks at its own rate; the pipeline converts the rate. A source
reports capture gaps (device overflows) as ``dropped_before`` so the sample clock stays
true. Audio goes from here into the pipeline's ring buffer and nowhere else.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import soundfile as sf

from ouie.config.node import SourceSettings
from ouie.node.audio_io import AudioInputError, audio_files, mix_down

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AudioChunk:
    samples: FloatArray
    dropped_before: int = 0  # samples lost in capture just before this chunk


def file_rate(path: Path) -> int:
    try:
        return int(sf.info(str(path)).samplerate)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioInputError(f"{path}: not a readable WAV/FLAC/OGG file") from exc


def iter_file_chunks(path: Path, chunk_s: float) -> Iterator[FloatArray]:
    """Blocks of a file, mixed down, without reading the whole file into memory."""
    rate = file_rate(path)
    block = max(1, round(chunk_s * rate))
    try:
        with sf.SoundFile(str(path)) as handle:
            if handle.frames == 0:
                raise AudioInputError(f"{path}: contains no audio samples")
            for data in handle.blocks(blocksize=block, dtype="float32", always_2d=True):
                yield mix_down(data)
    except sf.LibsndfileError as exc:
        raise AudioInputError(f"{path}: unreadable audio ({exc})") from exc


def iter_raw_pcm(stream: BinaryIO, settings: SourceSettings) -> Iterator[FloatArray]:
    """Raw interleaved PCM (s16le or f32le) from a byte stream, e.g. ``arecord | ouie node``."""
    width = 2 if settings.sample_format == "s16le" else 4
    frame_bytes = width * settings.channels
    block = max(1, round(settings.chunk_s * settings.sample_rate)) * frame_bytes
    leftover = b""
    while True:
        data = stream.read(block)
        if not data:
            break
        data = leftover + data
        usable = len(data) - len(data) % frame_bytes
        leftover = data[usable:]
        if usable == 0:
            continue
        if width == 2:
            samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
        else:
            samples = np.frombuffer(data[:usable], dtype="<f4").astype(np.float32)
        yield mix_down(samples.reshape(-1, settings.channels))


class AudioSource:
    """An async stream of chunks with a known sample rate."""

    def __init__(self, sample_rate: int, chunks: AsyncIterator[AudioChunk]) -> None:
        self.sample_rate = sample_rate
        self._chunks = chunks

    def __aiter__(self) -> AsyncIterator[AudioChunk]:
        return self._chunks


async def _from_sync(
    blocks: Iterator[FloatArray], rate: int, realtime: bool
) -> AsyncIterator[AudioChunk]:
    started = time.monotonic()
    sent = 0
    while True:
        block = await asyncio.to_thread(next, blocks, None)
        if block is None:
            return
        yield AudioChunk(block)
        sent += block.size
        if realtime:
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)


async def _from_device(settings: SourceSettings) -> AsyncIterator[AudioChunk]:
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        raise AudioInputError(
            "live capture needs the `node` extra (sounddevice) and PortAudio"
        ) from exc
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[AudioChunk] = asyncio.Queue(maxsize=64)
    block = max(1, round(settings.chunk_s * settings.sample_rate))
    lost = 0

    def callback(indata: FloatArray, frames: int, _time: object, status: object) -> None:
        nonlocal lost
        overflow = bool(getattr(status, "input_overflow", False))
        chunk = AudioChunk(mix_down(indata.copy()), dropped_before=block if overflow else 0)

        def put() -> None:
            nonlocal lost
            try:
                queue.put_nowait(AudioChunk(chunk.samples, chunk.dropped_before + lost))
                lost = 0
            except asyncio.QueueFull:  # the pipeline fell behind: count, don't block capture
                lost += frames

        loop.call_soon_threadsafe(put)

    with sd.InputStream(
        samplerate=settings.sample_rate,
        channels=settings.channels,
        dtype="float32",
        blocksize=block,
        device=settings.device,
        callback=callback,
    ):
        while True:
            yield await queue.get()


def open_source(settings: SourceSettings) -> AudioSource:
    if settings.kind == "file":
        if settings.path is None:
            raise AudioInputError("source.kind is file but source.path is not set")
        files = audio_files([settings.path])
        rates = {file_rate(f) for f in files}
        if len(rates) != 1:
            raise AudioInputError(f"{settings.path}: files have different rates {sorted(rates)}")
        rate = rates.pop()

        def blocks() -> Iterator[FloatArray]:
            for file in files:
                yield from iter_file_chunks(file, settings.chunk_s)

        return AudioSource(rate, _from_sync(blocks(), rate, settings.realtime))
    if settings.kind == "stdin":
        raw = iter_raw_pcm(sys.stdin.buffer, settings)
        return AudioSource(settings.sample_rate, _from_sync(raw, settings.sample_rate, False))
    return AudioSource(settings.sample_rate, _from_device(settings))
