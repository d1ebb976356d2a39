"""Backends as one-file plugins: module ``ouie.node.classifiers.<name>`` is backend ``<name>``.

Each backend module defines ``create(settings) -> Classifier``, taking its own settings model
from ``ouie.config.classifiers`` (whose ``BACKEND_MODELS`` is the list of backends), and a
one-line ``DESCRIPTION``. Modules are imported only when asked for, so a node that runs the
compact model never imports the TFLite runtime.
"""

from __future__ import annotations

import importlib

from pydantic import ValidationError

from ouie.config.classifiers import BACKEND_MODELS, ClassifierSettings, resolve
from ouie.node.classifiers.base import Classifier, ClassifierError


def backend_names() -> list[str]:
    return sorted(BACKEND_MODELS)


def backend_settings(settings: ClassifierSettings) -> ClassifierSettings:
    """``settings`` as its backend's own model (``ouie.config.classifiers.resolve``): a plain
    ``ClassifierSettings(backend=...)``, or one whose backend was changed with
    ``model_copy``, gets the backend's defaults for the fields it did not carry."""
    if settings.backend not in BACKEND_MODELS:
        raise ClassifierError(
            f"unknown classifier backend {settings.backend!r}; "
            f"available: {', '.join(backend_names())}"
        )
    try:
        return resolve(settings)
    except ValidationError as exc:
        raise ClassifierError(f"backend {settings.backend!r}: {exc}") from exc


def create_classifier(settings: ClassifierSettings) -> Classifier:
    resolved = backend_settings(settings)
    module = importlib.import_module(f"ouie.node.classifiers.{resolved.backend}")
    classifier = module.create(resolved)
    if not isinstance(classifier, Classifier):
        raise ClassifierError(f"backend {resolved.backend!r} did not return a Classifier")
    return classifier


def describe(name: str) -> str:
    module = importlib.import_module(f"ouie.node.classifiers.{name}")
    return str(getattr(module, "DESCRIPTION", ""))
