"""Backends as one-file plugins: module ``ouie.node.classifiers.<name>`` is backend ``<name>``.

Each backend module defines ``create(settings: ClassifierSettings) -> Classifier`` and a
one-line ``DESCRIPTION``. Modules are imported only when asked for, so a node that runs the
compact model never imports the TFLite runtime.
"""

from __future__ import annotations

import importlib
import pkgutil

from ouie.config.node import ClassifierSettings
from ouie.node.classifiers.base import Classifier, ClassifierError

_NOT_BACKENDS = frozenset({"base", "registry", "audioset_map", "frontend"})


def backend_names() -> list[str]:
    import ouie.node.classifiers as package

    return sorted(
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if info.name not in _NOT_BACKENDS and not info.name.startswith("_")
    )


def create_classifier(settings: ClassifierSettings) -> Classifier:
    names = backend_names()
    if settings.backend not in names:
        raise ClassifierError(
            f"unknown classifier backend {settings.backend!r}; available: {', '.join(names)}"
        )
    module = importlib.import_module(f"ouie.node.classifiers.{settings.backend}")
    classifier = module.create(settings)
    if not isinstance(classifier, Classifier):
        raise ClassifierError(f"backend {settings.backend!r} did not return a Classifier")
    return classifier


def describe(name: str) -> str:
    module = importlib.import_module(f"ouie.node.classifiers.{name}")
    return str(getattr(module, "DESCRIPTION", ""))
