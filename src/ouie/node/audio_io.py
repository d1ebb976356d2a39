"""Reading audio files and converting rate/channels, with errors a person can act on.

Audio read here stays in memory; nothing in the node writes audio anywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from ouie.node.resample import resample

FloatArray = npt.NDArray[np.float32]

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga"})


class AudioInputError(ValueError):
    """Unusable audio input; the message is one line, meant for the user."""


def mix_down(audio: npt.NDArray[np.floating] | FloatArray) -> FloatArray:
    """[n] or [n, channels] → mono float32 [n] (mean of channels)."""
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim == 1:
        return array
    if array.ndim == 2:
        return np.asarray(array.mean(axis=1), dtype=np.float32)
    raise AudioInputError(f"audio must be [samples] or [samples, channels], got {array.shape}")


def to_rate(audio: FloatArray, rate: int, target: int) -> FloatArray:
    """Resample mono audio with the polyphase filter of scipy's ``resample_poly``.

    The same numpy implementation as the node's ``StreamResampler``, so file detection
    and streaming see bit-identical samples (and the node never imports scipy).
    """
    if rate <= 0 or target <= 0:
        raise AudioInputError(f"sample rates must be positive, got {rate} → {target}")
    if rate == target or audio.size == 0:
        return np.asarray(audio, dtype=np.float32)
    return resample(audio, rate, target)


def read_audio(path: Path) -> tuple[FloatArray, int]:
    """Whole file as float32 mono at its native rate. Raises AudioInputError, never crashes."""
    if not path.exists():
        raise AudioInputError(f"{path}: no such file")
    if path.is_dir():
        raise AudioInputError(f"{path}: is a directory (use audio_files() to list it)")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        reason = str(exc).split(":")[-1].strip() or "unreadable"
        raise AudioInputError(f"{path}: not a readable WAV/FLAC/OGG file ({reason})") from exc
    except (RuntimeError, TypeError, ValueError) as exc:
        raise AudioInputError(f"{path}: not a readable audio file ({exc})") from exc
    if data.shape[0] == 0:
        raise AudioInputError(f"{path}: contains no audio samples")
    mono = mix_down(data)
    if not np.all(np.isfinite(mono)):
        mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    return mono, int(rate)


def audio_files(paths: list[Path]) -> list[Path]:
    """Expand directories (recursively, sorted) into the audio files they hold."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            try:
                inside = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            except OSError as exc:  # e.g. a sub-folder that cannot be listed
                raise AudioInputError(f"{path}: cannot be listed ({exc})") from exc
            if not inside:
                raise AudioInputError(f"{path}: directory holds no WAV/FLAC/OGG files")
            found.extend(inside)
        else:
            found.append(path)
    return found
