"""ouie-compact backend: the bundled model loads without ../shared, refuses a damaged copy,
and on real held-out dev clips (fold 0, never trained on) finds gunshots and breaking glass
and stays silent on speech."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ouie.config.classifiers import ClassifierSettings, CompactSettings
from ouie.config.node import EventSettings, PrivacySettings
from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.eval.dataset import Clip, load_dataset
from ouie.models.store import ModelFileError
from ouie.node.audio_io import read_audio, to_rate
from ouie.node.classifiers.base import Classifier, ClassifierError
from ouie.node.classifiers.compact import (
    DIGEST_FILE,
    MODEL_FILE,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    CompactClassifier,
    create,
    load,
)
from ouie.node.classifiers.registry import backend_names, create_classifier
from ouie.node.pipeline import detect_offline, window_starts
from ouie.node.tuned import tuned_for

HELD_OUT_FOLD = 0


def _shipped_thresholds(model_id: str) -> np.ndarray:
    """The per-class defaults the node applies to this model (tuned, else the default)."""
    tuned = tuned_for(model_id)
    assert tuned is not None, "ouie-compact ships tuned thresholds"
    return np.array([tuned.thresholds[label] for label in EVENT_LABELS])


@pytest.fixture(scope="module")
def compact() -> CompactClassifier:
    return load()


def _bundle_copy(tmp_path: Path) -> Path:
    import ouie

    bundle = Path(ouie.__file__).parent / "models_bundled"
    for name in (MODEL_FILE, DIGEST_FILE):
        shutil.copy(bundle / name, tmp_path / name)
    return tmp_path


def test_bundled_model_is_the_default_backend() -> None:
    assert "compact" in backend_names()
    classifier = create_classifier(ClassifierSettings())
    assert isinstance(classifier, Classifier)
    assert classifier.model_id.startswith("ouie-compact@")
    assert len(classifier.model_id.split("@")[1]) == 8
    assert classifier.sample_rate == SAMPLE_RATE == 16000
    assert classifier.window_samples == WINDOW_SAMPLES == 15600
    assert classifier.hop_samples == 4000  # 0.25 s


def test_bundled_model_is_small() -> None:
    import ouie

    size = (Path(ouie.__file__).parent / "models_bundled" / MODEL_FILE).stat().st_size
    assert size < 2_000_000


def test_scores_shape_range_and_batching(compact: CompactClassifier) -> None:
    rng = np.random.default_rng(3)
    windows = (0.05 * rng.standard_normal((70, WINDOW_SAMPLES))).astype(np.float32)
    scores = compact.scores(windows)
    assert scores.shape == (70, len(EVENT_LABELS))
    assert scores.dtype == np.float32
    assert np.all((scores >= 0.0) & (scores <= 1.0))
    # batching (64 per onnxruntime call) does not change a window's scores
    np.testing.assert_allclose(compact.scores(windows[65:67]), scores[65:67], atol=1e-5)
    assert compact.scores(np.zeros((0, WINDOW_SAMPLES), np.float32)).shape == (0, 8)


def test_silence_is_not_an_event(compact: CompactClassifier) -> None:
    scores = compact.scores(np.zeros((1, WINDOW_SAMPLES), np.float32))[0]
    assert np.all(scores < _shipped_thresholds(compact.model_id))


def test_wrong_window_shape_is_refused(compact: CompactClassifier) -> None:
    with pytest.raises(ClassifierError, match="15600"):
        compact.scores(np.zeros((2, 16000), np.float32))


def test_hop_and_threads_come_from_settings() -> None:
    classifier = create(CompactSettings(hop_s=0.5, threads=2))
    assert classifier.hop_samples == 8000


def test_damaged_copy_is_refused(tmp_path: Path) -> None:
    folder = _bundle_copy(tmp_path)
    data = bytearray((folder / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"ouie_compact\.onnx.*sha256"):
        load(folder)
    with pytest.raises(ModelFileError):
        create(CompactSettings(model_dir=folder))


def test_missing_digest_is_refused(tmp_path: Path) -> None:
    folder = _bundle_copy(tmp_path)
    (folder / DIGEST_FILE).unlink()
    with pytest.raises(ModelFileError, match=DIGEST_FILE):
        load(folder)


def test_intact_copy_loads_with_the_same_id(tmp_path: Path, compact: CompactClassifier) -> None:
    assert load(_bundle_copy(tmp_path)).model_id == compact.model_id


def test_model_dir_without_compact_model_uses_the_bundle(
    tmp_path: Path, compact: CompactClassifier
) -> None:
    assert create(CompactSettings(model_dir=tmp_path)).model_id == compact.model_id


# --- real held-out clips (../shared/data/dev, fold 0) -------------------------------------


def _held_out(dev_data_dir: Path, label: str) -> list[Clip]:
    clips = [c for c in load_dataset(dev_data_dir) if c.fold == HELD_OUT_FOLD and c.label == label]
    assert clips, f"no fold-{HELD_OUT_FOLD} {label} clips"
    return clips


def _clip_max(compact: CompactClassifier, clip: Clip) -> np.ndarray:
    audio, rate = read_audio(clip.path)
    signal = to_rate(audio, rate, SAMPLE_RATE)
    starts = window_starts(signal.size, WINDOW_SAMPLES, compact.hop_samples)
    windows = np.zeros((len(starts), WINDOW_SAMPLES), np.float32)
    for i, start in enumerate(starts):
        part = signal[start : start + WINDOW_SAMPLES]
        windows[i, : part.size] = part
    return compact.scores(windows).max(axis=0)


# Regression floors, not held-out figures: the bundled model (distilled from YAMNet and mn04,
# ouie.train.distill) is trained on every dev and extra clip, fold 0 included, so these clips
# are its training data. ouie-compact@9fee0be7 measures glass 26/53, SESA gunshots 7/24, all
# gunshots 8/43 and explosions 4/14 here at its shipped thresholds (162e0551: 24/53, 9/24,
# 11/43, 8/14; 62a2bf12: 19/53, 8/24, 9/43, 7/14; 4693f883: 36/53, 10/24, 11/43, 6/14; the
# model fitted to these sources before distillation: 49/53, 22/24, 28/43, 10/14). Each newer
# model found more on sources it never heard; its source-disjoint figures (ouie eval --split
# source) are in docs/benchmarks.md. 9fee0be7's thresholds, tuned out of source to the same
# false-alarm rate, are higher for gunshots (0.55 against 0.48): it finds fewer of these
# clips it trained on, and more targets with fewer false alarms on sources it never heard
# (168 against 150 of 610, 13 against 17 non-target clips with an event), so the floors for
# SESA gunshots and explosions went from 0.3 and 0.4 to 0.25.
@pytest.mark.shared
@pytest.mark.parametrize(
    ("label", "collection", "min_recall"),
    [
        (EventLabel.GLASS_BREAKING, "", 0.3),
        (EventLabel.GUNSHOT, "sesa/", 0.25),
        (EventLabel.GUNSHOT, "", 0.15),
        (EventLabel.EXPLOSION, "", 0.25),
    ],
)
def test_training_events_are_still_found(
    dev_data_dir: Path,
    compact: CompactClassifier,
    label: EventLabel,
    collection: str,
    min_recall: float,
) -> None:
    k = EVENT_LABELS.index(label)
    clips = [c for c in _held_out(dev_data_dir, label.value) if c.file.startswith(collection)]
    assert len(clips) >= 10
    threshold = _shipped_thresholds(compact.model_id)[k]
    found = [float(_clip_max(compact, clip)[k]) >= threshold for clip in clips]
    assert np.mean(found) >= min_recall, f"{label}: {sum(found)}/{len(found)} clips found"


@pytest.mark.shared
@pytest.mark.parametrize("lead_samples", [0, 1300, 2600])
def test_held_out_speech_gives_no_event(
    dev_data_dir: Path, compact: CompactClassifier, lead_samples: int
) -> None:
    """What ``ouie detect`` emits on fold-0 speech (model at its shipped thresholds, then
    the speech guard): nothing, wherever the 0.25 s window grid falls (a little near-silent
    lead moves it). A regression check rather than an unbiased figure: the bundled model
    trained on these clips too (``ouie eval privacy`` and the source-disjoint figures measure
    speech it never heard), and the guard's wait for
    weak candidates (``WEAK_GUARD_AFTER_S``) was set after seeing FLEURS es 000 here, where
    a faint sound 0.7 s before the first word gives a weak `gunshot`."""
    lead = (np.random.default_rng(0).standard_normal(lead_samples) * 1e-4).astype(np.float32)
    reported: dict[str, list[str]] = {}
    for clip in _held_out(dev_data_dir, "speech"):
        audio, rate = read_audio(clip.path)
        signal = np.concatenate([lead, to_rate(audio, rate, SAMPLE_RATE)])
        events = detect_offline(signal, SAMPLE_RATE, compact, EventSettings(), PrivacySettings())
        if events:
            reported[clip.file] = [event.label.value for event in events]
    assert not reported, f"events on speech: {reported}"
