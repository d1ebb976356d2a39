"""Each backend's own settings model, chosen by ``backend``, and the registry built on them."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from ouie.config.classifiers import (
    BACKEND_MODELS,
    AutoSettings,
    BackendSettings,
    CascadeSettings,
    ClassifierSettings,
    CompactSettings,
    Mn04Settings,
    YamnetSettings,
)
from ouie.config.loader import read_yaml
from ouie.config.node import NodeSettings
from ouie.core.labels import EVENT_LABELS
from ouie.node.classifiers import cascade
from ouie.node.classifiers.base import ClassifierBase, ClassifierError
from ouie.node.classifiers.compact import WINDOW_SAMPLES
from ouie.node.classifiers.registry import backend_names, backend_settings, create_classifier

EXAMPLES = Path(__file__).parents[3] / "examples"


def test_every_backend_has_a_module_and_a_settings_model() -> None:
    assert backend_names() == sorted(BACKEND_MODELS)
    for name, model in BACKEND_MODELS.items():
        module = importlib.import_module(f"ouie.node.classifiers.{name}")
        assert callable(module.create) and module.DESCRIPTION
        assert model().backend == name


def test_a_section_without_backend_is_auto() -> None:
    settings = NodeSettings.model_validate({"classifier": {"threads": 2}})
    assert isinstance(settings.classifier, AutoSettings) and settings.classifier.threads == 2
    assert isinstance(NodeSettings().classifier, AutoSettings)
    compact = NodeSettings.model_validate({"classifier": {"backend": "compact"}})
    assert isinstance(compact.classifier, CompactSettings)


@pytest.mark.parametrize(
    ("section", "model"),
    [
        ({"backend": "yamnet", "hop_s": 0.5}, YamnetSettings),
        ({"backend": "mn04", "device": "cuda"}, Mn04Settings),
        ({"backend": "cascade", "gate": 0.2}, CascadeSettings),
        ({"backend": "auto", "gate": 0.2}, AutoSettings),
    ],
)
def test_the_backend_picks_its_model(section: dict[str, object], model: type) -> None:
    assert type(NodeSettings.model_validate({"classifier": section}).classifier) is model


@pytest.mark.parametrize(
    "section",
    [
        {"backend": "yamnet", "gate": 0.2},  # another backend's setting
        {"backend": "compact", "device": "cuda"},
        {"backend": "yamnett"},  # a misspelt name fails at load, not when the node starts
        {"backend": "cascade", "gate": 1.5},
    ],
)
def test_wrong_sections_are_refused(section: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        NodeSettings.model_validate({"classifier": section})


NODE_EXAMPLES = sorted(p for p in EXAMPLES.rglob("*.yaml") if "classifier" in read_yaml(p))


def test_the_examples_have_classifier_sections() -> None:
    assert len(NODE_EXAMPLES) >= 3


@pytest.mark.parametrize("path", NODE_EXAMPLES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_classifier_sections_still_load(path: Path) -> None:
    # the examples under bad/ break other rules (for `ouie check`), never the classifier's
    section = read_yaml(path)["classifier"]
    settings = TypeAdapter(BackendSettings).validate_python(section)
    assert type(settings) is BACKEND_MODELS[section.get("backend", "auto")]


def test_the_registry_resolves_a_plain_request() -> None:
    request = ClassifierSettings(backend="cascade", threads=3, model_dir=Path("/m"))
    resolved = backend_settings(request)
    assert isinstance(resolved, CascadeSettings)
    assert (resolved.threads, resolved.model_dir, resolved.gate) == (3, Path("/m"), cascade.GATE)
    # a backend switched with model_copy keeps what the new backend has, drops the rest
    switched = backend_settings(Mn04Settings(device="cuda").model_copy(update={"backend": "auto"}))
    assert type(switched) is AutoSettings
    assert backend_settings(resolved) is resolved
    with pytest.raises(ClassifierError, match="unknown classifier backend 'nope'; available"):
        create_classifier(ClassifierSettings(backend="nope"))


def test_backends_share_one_base() -> None:
    compact = create_classifier(CompactSettings(hop_s=0.5))
    assert isinstance(compact, ClassifierBase)
    assert (compact.sample_rate, compact.window_samples, compact.hop_samples) == (
        16000,
        WINDOW_SAMPLES,
        8000,
    )


class _Gate:
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

    def scores_of_patches(self, patches: np.ndarray) -> np.ndarray:
        return np.full((len(patches), len(EVENT_LABELS)), 0.7, np.float32)


def test_the_cascade_gate_comes_from_settings() -> None:
    frames = np.zeros((3, WINDOW_SAMPLES), np.float32)
    frames[:, 0] = [0.04, 0.1, 0.3]
    default = cascade.CascadeClassifier(_Gate(), _Teacher(), None)  # type: ignore[arg-type]
    raised = cascade.CascadeClassifier(_Gate(), _Teacher(), None, threshold=0.2)  # type: ignore[arg-type]
    assert (default.scores(frames).max(axis=1) > 0).tolist() == [False, True, True]
    assert (raised.scores(frames).max(axis=1) > 0).tolist() == [False, False, True]
