from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ouie.config.node import EventSettings, PrivacySettings
from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.node.audio_io import to_rate
from ouie.node.classifiers.base import Classifier
from ouie.node.pipeline import GUARD_AFTER_S, DetectedEvent, DetectionPipeline, detect_offline
from ouie.privacy.speech_guard import VAD_RATE, SpeechGuard
from tests.privacy.speech import SENTENCES, VOICES, speak


@pytest.mark.parametrize("language", sorted(SENTENCES))
@pytest.mark.parametrize("variant", VOICES)
@pytest.mark.needs("espeak-ng")
def test_speech_is_detected_and_suppressed(language: str, variant: str, tmp_path: Path) -> None:
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


class _ClickHearingClassifier:
    """Hears a gunshot, at a fixed score, in every window holding a full-scale click; with
    ``sound_at_end``, only while a sound also begins at the window's very end (the way
    ouie-compact once heard a breath and the first instant of a word)."""

    model_id = "test-click@1"
    sample_rate = VAD_RATE
    window_samples = 15600
    hop_samples = 4000

    def __init__(self, score: float, sound_at_end: bool = False) -> None:
        self.score = score
        self.sound_at_end = sound_at_end

    def scores(self, frames: np.ndarray) -> np.ndarray:
        out = np.full((len(frames), len(EVENT_LABELS)), 0.01, np.float32)
        fires = np.abs(frames).max(axis=1) >= 0.95
        if self.sound_at_end:
            fires &= np.sqrt(np.mean(np.square(frames[:, -1600:]), axis=1)) > 0.01
        out[fires, EVENT_LABELS.index(EventLabel.GUNSHOT)] = self.score
        return out


def _click_after(lead: np.ndarray) -> np.ndarray:
    """``lead``, 1 s of quiet noise, a click, then 2 s of quiet noise (16 kHz)."""
    rng = np.random.default_rng(5)
    gap = (rng.standard_normal(VAD_RATE) * 0.002).astype(np.float32)
    click = np.zeros(160, np.float32)
    click[:40] = np.array([0.99, -0.99] * 20, np.float32)
    tail = (rng.standard_normal(2 * VAD_RATE) * 0.002).astype(np.float32)
    return np.concatenate([lead, gap, click, tail])


def _events(
    audio: np.ndarray, classifier: Callable[[], Classifier]
) -> tuple[list[DetectedEvent], list[DetectedEvent]]:
    """(streamed, offline) events of ``audio`` through the real pipeline and guard."""
    pipeline = DetectionPipeline(classifier(), EventSettings(), PrivacySettings(), VAD_RATE)
    streamed = []
    for i in range(0, audio.size, 1600):
        streamed.extend(pipeline.push(audio[i : i + 1600]))
    streamed.extend(pipeline.flush())
    offline = detect_offline(audio, VAD_RATE, classifier(), EventSettings(), PrivacySettings())
    return streamed, offline


@pytest.mark.parametrize("language", ["en", "fr", "ar"])
@pytest.mark.needs("espeak-ng")
def test_a_few_words_in_the_span_raise_every_class_to_the_strict_score(
    language: str, tmp_path: Path
) -> None:
    """0.4 s of words, then 2 s of silence: not speech-dominated, but someone is talking."""
    audio, rate = speak(SENTENCES[language], language, tmp_path / "s.wav")
    speech = to_rate(audio, rate, VAD_RATE)
    first_word = int(np.argmax(np.abs(speech) > 0.01))
    span = np.concatenate(
        [
            speech[first_word : first_word + round(0.4 * VAD_RATE)],
            np.zeros(2 * VAD_RATE, np.float32),
        ]
    )
    guard = SpeechGuard(PrivacySettings())
    assert guard.speech_fraction(span) < PrivacySettings().speech_fraction
    weak = guard.decide(EventLabel.GUNSHOT, 0.6, span)
    assert not weak.allowed and weak.speech_present
    sure = guard.decide(EventLabel.SCREAM, 0.95, span)  # any class, at the strict score
    assert sure.allowed and sure.speech_present


def test_a_weak_click_with_nobody_talking_is_reported() -> None:
    rng = np.random.default_rng(6)
    quiet = (rng.standard_normal(4 * VAD_RATE) * 0.002).astype(np.float32)
    streamed, offline = _events(_click_after(quiet), lambda: _ClickHearingClassifier(0.6))
    assert [e.label for e in streamed] == [EventLabel.GUNSHOT] == [e.label for e in offline]
    assert not streamed[0].speech_present


def _click_then_speech(tmp_path: Path) -> np.ndarray:
    """Quiet, a click, 0.6 s of quiet, then a sentence from its first instant."""
    audio, rate = speak(SENTENCES["es"], "es", tmp_path / "s.wav")
    speech = to_rate(audio, rate, VAD_RATE)
    speech = speech[int(np.argmax(np.abs(speech) > 0.01)) :]
    speech = speech * np.float32(0.3 / np.abs(speech).max())
    rng = np.random.default_rng(7)
    quiet = (rng.standard_normal(3 * VAD_RATE) * 0.0005).astype(np.float32)
    gap = (rng.standard_normal(round(0.6 * VAD_RATE)) * 0.0005).astype(np.float32)
    click = np.zeros(160, np.float32)
    click[:40] = np.array([0.99, -0.99] * 20, np.float32)
    return np.concatenate([quiet, click, gap, speech])


@pytest.mark.needs("espeak-ng")
def test_weak_candidate_waits_to_hear_the_word_its_window_ends_on(tmp_path: Path) -> None:
    """The confirming window ends as a word begins: too little of it for silero. A weak
    candidate is heard to WEAK_GUARD_AFTER_S after its onset, so hears the word, and is
    dropped."""
    audio = _click_then_speech(tmp_path)
    weak_streamed, weak_offline = _events(
        audio, lambda: _ClickHearingClassifier(0.6, sound_at_end=True)
    )
    strong_streamed, strong_offline = _events(
        audio, lambda: _ClickHearingClassifier(0.95, sound_at_end=True)
    )
    assert weak_streamed == [] and weak_offline == []
    # A sure gunshot does not wait: it is out GUARD_AFTER_S after its onset (or with its
    # confirming window), however the talker goes on.
    assert [e.label for e in strong_streamed] == [EventLabel.GUNSHOT]
    event = strong_streamed[0]
    assert event.emitted_at_s <= max(event.offset_s, event.onset_s + GUARD_AFTER_S) + 0.1
    assert [e.onset_s for e in strong_offline] == [event.onset_s]
