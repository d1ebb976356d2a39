"""Rule ``audio-export``: no option may store or export audio, spectrograms or features."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ouie.compliance.findings import Finding
from ouie.compliance.fswatch import AUDIO_SUFFIXES
from ouie.compliance.rules.walk import key_tokens, truthy, walk

_AUDIO_TOKENS = frozenset(
    {
        "audio",
        "wav",
        "wave",
        "flac",
        "pcm",
        "mp3",
        "ogg",
        "clip",
        "clips",
        "snippet",
        "snippets",
        "spectrogram",
        "spectrograms",
        "spectra",
        "spectrum",
        "mel",
        "melspec",
        "logmel",
        "features",
        "embedding",
        "embeddings",
        "recording",
        "recordings",
        "sound",
        "sounds",
        "samples",
        "voice",
        "speech",
        "transcript",
        "transcripts",
    }
)
_STORE_TOKENS = frozenset(
    {
        "save",
        "store",
        "export",
        "dump",
        "keep",
        "record",
        "upload",
        "archive",
        "dir",
        "directory",
        "folder",
        "path",
        "file",
        "files",
        "retain",
        "retention",
        "write",
        "persist",
        "stream",
        "forward",
        "send",
        "publish",
        "cache",
        "bucket",
        "url",
        "endpoint",
        "sink",
        "capture",
        "enabled",
        "enable",
        "output",
        "out",
    }
)
_ALWAYS_AUDIO_KEYS = frozenset(
    {"record", "recording", "recordings", "spectrograms", "snippets", "transcripts", "clips"}
)
# Sections whose audio-ish keys describe *input* (where a node reads sound from).
_INPUT_SECTIONS = ("source",)


def _is_input_path(path: str) -> bool:
    return any(path == s or path.startswith(s + ".") for s in _INPUT_SECTIONS)


def audio_export_findings(raw: Mapping[str, Any], source: str = "") -> list[Finding]:
    """Keys that would store or export audio or features, and output paths with audio
    suffixes. Input sections (``source``) are exempt: reading sound is the job."""
    found: list[Finding] = []
    for path, key, value in walk(raw):
        if _is_input_path(path):
            continue
        tokens = key_tokens(key) if key else set()
        audio_key = key.lower() in _ALWAYS_AUDIO_KEYS or (
            bool(tokens & _AUDIO_TOKENS) and bool(tokens & _STORE_TOKENS)
        )
        if audio_key and truthy(value):
            found.append(
                Finding(
                    "audio-export",
                    "this option would store or export audio, spectrograms or features; "
                    "ouie never keeps sound: remove it",
                    path,
                    source,
                )
            )
            continue
        if isinstance(value, str) and not audio_key:
            suffix = Path(value.split("?")[0]).suffix.lower()
            if suffix in AUDIO_SUFFIXES:
                found.append(
                    Finding(
                        "audio-export",
                        f"writes to a {suffix} file; outputs carry event metadata only",
                        path,
                        source,
                    )
                )
    return found
