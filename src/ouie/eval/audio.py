"""Dataset audio for evaluation: durations without decoding, and clips at one rate, cached.

Evaluation reads the dataset's files (it is the one place that must); nothing here writes
audio anywhere. The cache is bounded in bytes so a large dataset cannot exhaust memory.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from ouie.node.audio_io import AudioInputError, read_audio, to_rate

FloatArray = npt.NDArray[np.float32]


def clip_duration(path: Path) -> float:
    """Duration in seconds from the file header (no decoding)."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioInputError(f"{path}: not a readable WAV/FLAC/OGG file") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioInputError(f"{path}: contains no audio samples")
    return float(info.frames) / float(info.samplerate)


class ClipCache:
    """Clips decoded, mixed down and resampled to ``rate``; least recently used evicted."""

    def __init__(self, rate: int, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.rate = rate
        self.max_bytes = max_bytes
        self._items: OrderedDict[Path, FloatArray] = OrderedDict()
        self._bytes = 0

    def get(self, path: Path) -> FloatArray:
        cached = self._items.get(path)
        if cached is not None:
            self._items.move_to_end(path)
            return cached
        audio, native = read_audio(path)
        return self.put(path, audio, native)

    def put(self, path: Path, audio: FloatArray, rate: int) -> FloatArray:
        """Cache audio already decoded elsewhere (mono, at ``rate``), so it is not read twice."""
        if rate != self.rate:
            resampled = to_rate(audio, rate, self.rate)
        elif audio.dtype == np.float32 and not audio.flags.writeable:
            resampled = audio  # already frozen (e.g. from another cache): share it
        else:
            resampled = np.array(audio, dtype=np.float32)  # the caller keeps its own array
        resampled.setflags(write=False)
        previous = self._items.pop(path, None)
        if previous is not None:
            self._bytes -= previous.nbytes
        self._items[path] = resampled
        self._bytes += resampled.nbytes
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            self._bytes -= evicted.nbytes
        return resampled
