"""mn04 backend on onnxruntime: shapes and mapping over an exported model, model-file errors,
providers, and that the node path never imports torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ouie.config.classifiers import ClassifierSettings, Mn04Settings
from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.models.store import sha256_of
from ouie.node.audio_io import read_audio, to_rate
from ouie.node.classifiers.audioset_map import AudioSetMapper, read_class_mids
from ouie.node.classifiers.base import Classifier, ClassifierError
from ouie.node.classifiers.mn04 import (
    CLASS_CSV,
    DESCRIPTION,
    ONNX_NAME,
    Mn04Classifier,
    create,
    providers_for,
)
from ouie.node.classifiers.registry import backend_names, create_classifier

pytestmark = pytest.mark.shared

WINDOW = 32000


@pytest.fixture(scope="module")
def mn04(mn04_model_dir: Path) -> Mn04Classifier:
    return create(Mn04Settings(model_dir=mn04_model_dir))


def test_backend_is_registered_and_described() -> None:
    assert "mn04" in backend_names()
    assert "mn04" in DESCRIPTION.lower()


def test_scores_are_mapped_to_the_eight_labels(mn04: Mn04Classifier, mn04_model_dir: Path) -> None:
    assert isinstance(mn04, Classifier)
    assert mn04.sample_rate == 32000
    assert mn04.window_samples == WINDOW
    assert mn04.hop_samples == 8000
    assert mn04.model_id == f"mn04-onnx@{sha256_of(mn04_model_dir / ONNX_NAME)[:8]}"
    rng = np.random.default_rng(3)
    frames = (0.1 * rng.standard_normal((5, WINDOW))).astype(np.float32)
    scores = mn04.scores(frames)
    assert scores.shape == (5, len(EVENT_LABELS)) and scores.dtype == np.float32
    assert np.all((scores >= 0.0) & (scores <= 1.0))
    raw = mn04.audioset_scores(frames)
    assert raw.shape == (5, 527) and raw.dtype == np.float32
    mapper = AudioSetMapper(read_class_mids(mn04_model_dir / CLASS_CSV))
    np.testing.assert_array_equal(scores, mapper(raw))
    assert mn04.scores(np.zeros((0, WINDOW), dtype=np.float32)).shape == (0, 8)


def test_batches_and_single_windows_agree(mn04: Mn04Classifier) -> None:
    rng = np.random.default_rng(4)
    frames = (0.2 * rng.standard_normal((3, WINDOW))).astype(np.float32)
    batch = mn04.audioset_scores(frames)
    singles = np.vstack([mn04.audioset_scores(frames[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(batch, singles, atol=1e-5)


def test_wrong_window_length_is_refused(mn04: Mn04Classifier) -> None:
    with pytest.raises(ClassifierError, match="32000"):
        mn04.scores(np.zeros((1, 16000), dtype=np.float32))


def test_gunshot_window_scores_gunshot(mn04: Mn04Classifier, dev_data_dir: Path) -> None:
    audio, rate = read_audio(dev_data_dir / "sesa" / "train_v1_gunshot_069.flac")
    audio = to_rate(audio, rate, 32000)
    starts = range(0, len(audio) - WINDOW + 1, mn04.hop_samples)
    frames = np.stack([audio[s : s + WINDOW] for s in starts])
    scores = mn04.scores(frames)
    gun = EVENT_LABELS.index(EventLabel.GUNSHOT)
    assert scores[:, gun].max() > 0.2
    assert int(np.argmax(scores.max(axis=0))) == gun


def test_registry_with_model_dir_env_and_hop_override(
    mn04_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUIE_MODEL_DIR", str(mn04_model_dir))
    classifier = create_classifier(ClassifierSettings(backend="mn04", threads=2, hop_s=0.5))
    assert classifier.hop_samples == 16000
    assert classifier.model_id.startswith("mn04-onnx@")


def test_missing_onnx_says_how_to_import(tmp_path: Path) -> None:
    with pytest.raises(ClassifierError) as info:
        create(Mn04Settings(model_dir=tmp_path))
    message = str(info.value)
    assert ONNX_NAME in message
    assert "ouie models import --from ../shared/models" in message


def test_missing_class_list_says_how_to_import(mn04_model_dir: Path, tmp_path: Path) -> None:
    for name in (ONNX_NAME, ONNX_NAME + ".sha256"):
        shutil.copy(mn04_model_dir / name, tmp_path)
    with pytest.raises(ClassifierError, match=f"{CLASS_CSV}.*ouie models import"):
        create(Mn04Settings(model_dir=tmp_path))


def test_tampered_onnx_is_refused(mn04_model_dir: Path, tmp_path: Path) -> None:
    for name in (ONNX_NAME, ONNX_NAME + ".sha256", CLASS_CSV):
        shutil.copy(mn04_model_dir / name, tmp_path)
    with (tmp_path / ONNX_NAME).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ClassifierError, match="sha256"):
        create(Mn04Settings(model_dir=tmp_path))


def test_providers() -> None:
    import onnxruntime as ort

    assert providers_for("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert providers_for("cuda")[0] == "CUDAExecutionProvider"
    else:
        with pytest.raises(ClassifierError, match="CUDAExecutionProvider"):
            providers_for("cuda")
    with pytest.raises(ClassifierError, match="unknown device"):
        providers_for("tpu")


def test_explicit_cpu_provider(mn04_model_dir: Path) -> None:
    classifier = Mn04Classifier(mn04_model_dir, providers=providers_for("cpu"))
    assert classifier.providers == ["CPUExecutionProvider"]


def test_node_path_does_not_import_torch() -> None:
    code = (
        "import sys, ouie.node.classifiers.mn04, ouie.node.frontends.mn04; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
