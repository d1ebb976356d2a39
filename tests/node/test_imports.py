"""The node's runtime path stays light: no scipy (``scipy.signal`` alone is ~100 MB RSS)."""

from __future__ import annotations

import json
import subprocess
import sys

#: What ``ouie node`` imports with the default (compact) backend and its transports, plus
#: the audio reading of ``ouie detect``.
NODE_MODULES = (
    "ouie.node.run_cli",
    "ouie.config.loader",
    "ouie.config.node",
    "ouie.node.runtime",
    "ouie.node.pipeline",
    "ouie.node.sources",
    "ouie.node.status",
    "ouie.node.audio_io",
    "ouie.node.file_detect",
    "ouie.node.resample",
    "ouie.node.events",
    "ouie.node.onset",
    "ouie.node.classifiers.registry",
    "ouie.node.classifiers.compact",
    "ouie.node.frontends.yamnet",
    "ouie.privacy.speech_guard",
    "ouie.privacy.scrub",
    "ouie.transport.factory",
    "ouie.transport.jsonl",
    "ouie.transport.mqtt",
    "ouie.transport.spool",
)
HEAVY = ("scipy", "torch", "sklearn", "pandas", "matplotlib")


def _heavy_modules_loaded_by(modules: tuple[str, ...]) -> list[str]:
    """Top-level names from HEAVY in ``sys.modules`` after importing ``modules`` afresh."""
    code = (
        f"import json, sys, {', '.join(modules)}; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_node_runtime_path_imports_no_heavy_package() -> None:
    assert _heavy_modules_loaded_by(NODE_MODULES) == []


def test_other_backends_import_no_heavy_package() -> None:
    modules = ("ouie.node.classifiers.mn04", "ouie.node.classifiers.yamnet")
    assert _heavy_modules_loaded_by(modules) == []
