"""YAMNet backend: front-end against the shipped test vectors, the network's sanity, the
AudioSet → ouie mapping on real gunshot clips, and refusal of a wrong model file."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert", reason="the yamnet backend needs the node extra")

from ouie.config.classifiers import ClassifierSettings, YamnetSettings
from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.models.store import ModelFileError
from ouie.node.audio_io import read_audio, to_rate
from ouie.node.classifiers.base import Classifier, ClassifierError
from ouie.node.classifiers.registry import backend_names, create_classifier
from ouie.node.classifiers.yamnet import (
    CLASS_MAP_FILE,
    MODEL_FILE,
    WINDOW_SAMPLES,
    YamnetClassifier,
    create,
)
from ouie.node.frontends.yamnet import log_mel

pytestmark = pytest.mark.shared

GUN = EVENT_LABELS.index(EventLabel.GUNSHOT)
EXPLOSION = EVENT_LABELS.index(EventLabel.EXPLOSION)


@pytest.fixture
def yamnet(shared_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> YamnetClassifier:
    monkeypatch.setenv("OUIE_MODEL_DIR", str(shared_models_dir))
    return create(YamnetSettings())


def _test_audio(shared_models_dir: Path) -> np.ndarray:
    pcm = np.fromfile(shared_models_dir / "yamnet_test_audio.bin", dtype="<i2")
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def _test_spectra(shared_models_dir: Path) -> np.ndarray:
    return np.fromfile(shared_models_dir / "yamnet_test_spectra.bin", dtype="<f4").reshape(96, 64)


def test_frontend_matches_test_vector_up_to_capture_gain(shared_models_dir: Path) -> None:
    audio = _test_audio(shared_models_dir)
    assert audio.size == WINDOW_SAMPLES
    ours = log_mel(audio)
    assert ours.shape == (96, 64)
    difference = _test_spectra(shared_models_dir) - ours
    # The test vector was captured with a different gain: a constant offset in log-mel.
    assert difference.mean() == pytest.approx(1.41, abs=0.02)
    assert difference.std() < 0.05


def test_network_hears_speech_in_test_audio(
    yamnet: YamnetClassifier, shared_models_dir: Path
) -> None:
    speech = yamnet.class_names.index("Speech")
    for raw in (
        yamnet.audioset_scores(_test_audio(shared_models_dir)[None]),  # through our front-end
        yamnet.raw_scores(_test_spectra(shared_models_dir)[None]),  # the shipped patch
    ):
        assert raw.shape == (1, 521)
        assert int(raw[0].argmax()) == speech
        assert raw[0, speech] >= 0.9


def test_speech_maps_to_no_event(yamnet: YamnetClassifier, shared_models_dir: Path) -> None:
    scores = yamnet.scores(_test_audio(shared_models_dir)[None])
    assert scores.shape == (1, len(EVENT_LABELS))
    assert scores.dtype == np.float32
    assert float(scores.max()) < 0.1


def _windows(audio: np.ndarray, hop: int) -> np.ndarray:
    if audio.size < WINDOW_SAMPLES:
        audio = np.pad(audio, (0, WINDOW_SAMPLES - audio.size))
    starts = range(0, audio.size - WINDOW_SAMPLES + 1, hop)
    return np.stack([audio[s : s + WINDOW_SAMPLES] for s in starts]).astype(np.float32)


@pytest.mark.parametrize("clip", ["gunshot_rpi/11552.flac", "sesa/test_gunshot_100.flac"])
def test_gunshot_clip_scores_gunshot_or_explosion(
    yamnet: YamnetClassifier, dev_data_dir: Path, clip: str
) -> None:
    with (dev_data_dir / "labels.csv").open(newline="", encoding="utf-8") as handle:
        labels = {row["file"]: row["label"] for row in csv.DictReader(handle)}
    assert labels[clip] == "gunshot"
    audio, rate = read_audio(dev_data_dir / clip)
    peak = yamnet.scores(_windows(to_rate(audio, rate, 16000), yamnet.hop_samples)).max(axis=0)
    assert max(peak[GUN], peak[EXPLOSION]) >= 0.8
    assert int(peak.argmax()) in (GUN, EXPLOSION)


def test_interface_and_settings(shared_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUIE_MODEL_DIR", str(shared_models_dir))
    assert "yamnet" in backend_names()
    classifier = create_classifier(ClassifierSettings(backend="yamnet"))
    assert isinstance(classifier, Classifier)
    assert classifier.sample_rate == 16000
    assert classifier.window_samples == 15600
    assert classifier.hop_samples == 7680  # 0.48 s, 50 % overlap
    assert classifier.model_id == "yamnet-tflite@0a266465"
    assert classifier.scores(np.zeros((0, WINDOW_SAMPLES), dtype=np.float32)).shape == (0, 8)
    with pytest.raises(ClassifierError, match="15600"):
        classifier.scores(np.zeros((2, 16000), dtype=np.float32))
    custom = create(YamnetSettings(hop_s=0.25, threads=2))
    assert custom.hop_samples == 4000


def test_batch_equals_one_by_one(yamnet: YamnetClassifier) -> None:
    rng = np.random.default_rng(3)
    frames = (rng.standard_normal((4, WINDOW_SAMPLES)) * 0.1).astype(np.float32)
    together = yamnet.scores(frames)
    alone = np.concatenate([yamnet.scores(frames[i : i + 1]) for i in range(4)])
    np.testing.assert_array_equal(together, alone)


def test_wrong_model_file_is_refused_by_name(shared_models_dir: Path, tmp_path: Path) -> None:
    shutil.copy(shared_models_dir / CLASS_MAP_FILE, tmp_path / CLASS_MAP_FILE)
    (tmp_path / MODEL_FILE).write_bytes(b"not a tflite model")
    with pytest.raises(ModelFileError, match=MODEL_FILE.replace(".", r"\.")):
        create(YamnetSettings(model_dir=tmp_path))


def test_missing_model_file_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUIE_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelFileError, match=r"yamnet_spectra_in\.tflite not found.*copy it"):
        create(YamnetSettings())
