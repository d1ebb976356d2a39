"""The cascade backend: compact gates, the teachers score only the candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ouie.config.classifiers import ClassifierSettings, GatedSettings
from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.node.classifiers import cascade
from ouie.node.classifiers.base import Classifier, ClassifierError
from ouie.node.classifiers.compact import WINDOW_SAMPLES
from ouie.node.classifiers.registry import backend_names, create_classifier


class _Gate:
    """Stands in for ouie-compact: window i scores ``levels[i]`` on every label."""

    model_id = "ouie-compact@aaaaaaaa"
    sample_rate = 16000
    window_samples = WINDOW_SAMPLES
    hop_samples = 4000

    def patches(self, frames: np.ndarray) -> np.ndarray:
        return np.asarray(frames, np.float32)[:, :1, None] * np.ones((1, 96, 64), np.float32)

    def patch_scores(self, patches: np.ndarray) -> np.ndarray:
        return np.repeat(patches[:, 0, :1], len(EVENT_LABELS), axis=1)


class _Teacher:
    model_id = "yamnet-tflite@bbbbbbbb"

    def __init__(self, score: float) -> None:
        self.score = score
        self.seen = 0

    def scores_of_patches(self, patches: np.ndarray) -> np.ndarray:
        self.seen += len(patches)
        return np.full((len(patches), len(EVENT_LABELS)), self.score, np.float32)


def _windows(levels: list[float]) -> np.ndarray:
    frames = np.zeros((len(levels), WINDOW_SAMPLES), np.float32)
    frames[:, 0] = levels
    return frames


def test_only_candidates_reach_the_teacher_and_it_decides() -> None:
    teacher = _Teacher(0.64)
    model = cascade.CascadeClassifier(_Gate(), teacher, None)  # type: ignore[arg-type]
    assert isinstance(model, Classifier)
    scores = model.scores(_windows([0.01, cascade.GATE, 0.9, cascade.GATE * 0.9]))
    assert teacher.seen == 2
    np.testing.assert_allclose(scores[0], 0.0)
    np.testing.assert_allclose(scores[3], 0.0)
    np.testing.assert_allclose(scores[1], 0.64, rtol=1e-5)  # the teachers decide
    np.testing.assert_allclose(scores[2], 0.64, rtol=1e-5)
    assert model.stage_counts.compact == 4 and model.stage_counts.yamnet == 2
    assert model.stages == ["compact", "yamnet"]
    assert model.model_id == "cascade@aaaaaaaa-bbbbbbbb"


def test_non_default_settings_are_in_the_model_id() -> None:
    model = cascade.CascadeClassifier(  # type: ignore[arg-type]
        _Gate(),
        _Teacher(0.5),
        None,
        threshold=0.03,
        teacher_mix="logit",
        compact_labels=[EventLabel.SIREN, EventLabel.GLASS_BREAKING],
    )
    assert model.model_id == (
        "cascade@aaaaaaaa-bbbbbbbb+gate=0.03+mix=logit+compact=glass_breaking,siren"
    )
    every = cascade.CascadeClassifier(  # type: ignore[arg-type]
        _Gate(), _Teacher(0.5), None, threshold=0.031, compact_labels=list(EventLabel)
    )
    assert len(every.model_id) <= 128 and every.model_id.split("@", 1)[0] == "cascade"
    assert every.model_id != model.model_id
    # a suffix too long for a message's model id: a digest of it, the family still "cascade"
    digests = ["aaaaaaaa", "bbbbbbbb", "cccccccc"]
    long_suffix = "+compact=" + ",".join(label.value for label in EventLabel) * 2
    short = cascade.cascade_model_id(digests, long_suffix)
    assert len(short) <= 128 and short.startswith("cascade@aaaaaaaa-bbbbbbbb-cccccccc+settings=")
    assert short != cascade.cascade_model_id(digests, long_suffix + "x")


def test_a_silent_teacher_vetoes_the_gate() -> None:
    model = cascade.CascadeClassifier(_Gate(), _Teacher(0.0), None)  # type: ignore[arg-type]
    assert model.scores(_windows([0.95])).max() == 0.0


def test_cascade_is_a_registered_backend() -> None:
    assert "cascade" in backend_names()


def test_missing_teacher_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUIE_MODEL_DIR", str(tmp_path))  # no teachers installed anywhere
    with pytest.raises(ClassifierError, match=r"cascade needs YAMNet.*ouie models import"):
        create_classifier(ClassifierSettings(backend="cascade", model_dir=tmp_path))


@pytest.mark.shared
def test_real_cascade_scores_windows(shared_models_dir: Path) -> None:
    # the shared folder holds YAMNet but no exported mn04: YAMNet alone confirms
    model = create_classifier(ClassifierSettings(backend="cascade", model_dir=shared_models_dir))
    assert model.stages == ["compact", "yamnet"]  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    frames = (rng.standard_normal((6, WINDOW_SAMPLES)) * 0.3).astype(np.float32)
    scores = model.scores(frames)
    assert scores.shape == (6, len(EVENT_LABELS))
    assert np.all((scores >= 0.0) & (scores <= 1.0))
    assert model.model_id.startswith("cascade@")


def test_auto_is_compact_without_teachers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUIE_MODEL_DIR", str(tmp_path))
    model = create_classifier(ClassifierSettings(backend="auto", model_dir=tmp_path))
    assert model.model_id.startswith("ouie-compact@")


def test_auto_refuses_a_damaged_teacher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUIE_MODEL_DIR", str(tmp_path))
    (tmp_path / "yamnet_spectra_in.tflite").write_bytes(b"not a model")
    with pytest.raises(ClassifierError, match="cascade needs YAMNet"):
        create_classifier(ClassifierSettings(backend="auto", model_dir=tmp_path))


@pytest.mark.shared
def test_auto_is_the_cascade_with_teachers(shared_models_dir: Path) -> None:
    model = create_classifier(ClassifierSettings(backend="auto", model_dir=shared_models_dir))
    assert model.model_id.startswith("cascade@")


class _Mn04:
    """Stands in for mn04: every window maps to ``score`` on every label."""

    model_id = "mn04@cccccccc"

    def __init__(self, score: float) -> None:
        self.score = score

    def raw_scores(self, logmel: np.ndarray) -> np.ndarray:
        return np.zeros((len(logmel), 527), np.float32)

    def mapped(self, raw: np.ndarray) -> np.ndarray:
        return np.full((len(raw), len(EVENT_LABELS)), self.score, np.float32)


@pytest.mark.parametrize(
    ("mix", "expected"),
    [("mean", 0.255), ("logit", 1.0 / (1.0 + np.exp(-0.5 * np.log(0.01 / 0.99))))],
)
def test_the_two_teachers_combine_by_the_configured_mix(mix: str, expected: float) -> None:
    model = cascade.CascadeClassifier(
        _Gate(),
        _Teacher(0.5),
        _Mn04(0.01),
        teacher_mix=mix,  # type: ignore[arg-type]
    )
    scores = model.scores(_windows([0.9]))
    np.testing.assert_allclose(scores[0], expected, rtol=1e-4)
    assert model.stages == ["compact", "yamnet", "mn04"]


def test_compact_labels_keep_compacts_own_score_on_candidates_only() -> None:
    glass = EVENT_LABELS.index(EventLabel.GLASS_BREAKING)
    model = cascade.CascadeClassifier(
        _Gate(),  # type: ignore[arg-type]
        _Teacher(0.2),
        None,
        compact_labels=[EventLabel.GLASS_BREAKING],
    )
    scores = model.scores(_windows([0.9, 0.1, cascade.GATE * 0.5]))
    # a candidate: the teachers' 0.2 everywhere but glass, where compact's 0.9 (or 0.1) is larger
    np.testing.assert_allclose(scores[0, glass], 0.9, rtol=1e-5)
    np.testing.assert_allclose(np.delete(scores[0], glass), 0.2, rtol=1e-5)
    np.testing.assert_allclose(scores[1, glass], 0.2, rtol=1e-5)  # the teachers' is larger
    np.testing.assert_allclose(scores[2], 0.0)  # below the gate nothing is reported


def test_compact_labels_reach_the_cascade_from_its_settings() -> None:
    settings = GatedSettings.model_validate({"compact_labels": ["glass_breaking"]})
    assert settings.compact_labels == [EventLabel.GLASS_BREAKING]
    with pytest.raises(ValueError, match="compact_labels"):
        GatedSettings.model_validate({"compact_labels": ["speech"]})
