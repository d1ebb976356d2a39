from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ouie.config.node import PrivacySettings
from ouie.core.labels import EventLabel
from ouie.node.audio_io import to_rate
from ouie.privacy.speech_guard import VAD_RATE, SpeechGuard
from tests.privacy.speech import SENTENCES, VOICES, espeak_available, speak


@pytest.mark.parametrize("language", sorted(SENTENCES))
@pytest.mark.parametrize("variant", VOICES)
def test_speech_is_detected_and_suppressed(language: str, variant: str, tmp_path: Path) -> None:
    espeak_available()
    audio, rate = speak(SENTENCES[language], language + variant, tmp_path / "s.wav")
    audio16 = to_rate(audio, rate, VAD_RATE)
    guard = SpeechGuard(PrivacySettings())
    assert guard.speech_fraction(audio16) >= 0.5
    assert not guard.decide(EventLabel.SCREAM, 0.99, audio16).allowed
    assert not guard.decide(EventLabel.GUNSHOT, 0.6, audio16).allowed
    # A shot during a conversation is still reported when the classifier is very sure.
    strict = guard.decide(EventLabel.GUNSHOT, 0.95, audio16)
    assert strict.allowed
    assert strict.speech_present


def test_non_speech_passes() -> None:
    rng = np.random.default_rng(3)
    noise = (rng.standard_normal(VAD_RATE * 2) * 0.05).astype(np.float32)
    guard = SpeechGuard(PrivacySettings())
    assert guard.speech_fraction(noise) < 0.3
    assert guard.decide(EventLabel.SIREN, 0.6, noise).allowed
    assert guard.speech_fraction(np.zeros(100, dtype=np.float32)) == 0.0
