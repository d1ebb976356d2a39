"""What a twin run plays: real recordings (from which dataset and collections) or synthetic
sources, so a scorecard never passes generated shots off as real ones.

``ouie sim run`` and ``ouie demo`` print ``sources_line`` and write ``describe`` into the
scorecard JSON (``sources``).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from ouie.sim.scenario import BuiltScenario

DATASET_PREFIX = "dataset:"


def _collection(source: str) -> str:
    """``dataset:gunshot_rpi/x.flac`` → ``gunshot_rpi`` (the clip's collection folder)."""
    path = PurePosixPath(source[len(DATASET_PREFIX) :])
    return path.parts[0] if len(path.parts) > 1 else str(path)


def describe(built: BuiltScenario) -> dict[str, Any]:
    """``mode`` (``real``, ``synthetic``, ``mixed`` or ``none``), the dataset's name, how many
    events are real clips and how many synthetic, how many clips were cut before a second
    bang (``trimmed``), their collections and the ambience."""
    real = [e for e in built.truth if not e.synthetic]
    synthetic = [e for e in built.truth if e.synthetic]
    collections = sorted(
        {_collection(e.source) for e in real if e.source.startswith(DATASET_PREFIX)}
    )
    recorded = [t for t in built.ambience_tracks if not t.startswith("generated-")]
    if real and synthetic:
        mode = "mixed"
    elif real:
        mode = "real"
    elif synthetic:
        mode = "synthetic"
    else:
        mode = "none"
    return {
        "mode": mode,
        "dataset": built.dataset_dir.name if built.dataset_dir is not None else None,
        "real_clips": len(real),
        "synthetic": len(synthetic),
        "trimmed": sum(e.trimmed_at_s is not None for e in real),
        "collections": collections,
        "ambience": "recorded" if recorded else "generated",
    }


def classifier_line(card: dict[str, Any]) -> str:
    """What heard the sounds: ``auto`` is the cascade where the AudioSet teachers are installed
    and ouie-compact alone elsewhere, so the model id is printed, not only the backend."""
    return f"classifier: {card.get('model_id') or 'unknown'} (backend {card.get('backend')})"


def sources_line(sources: dict[str, Any]) -> str:
    """One line for the terminal: what was played, and a warning when it was synthetic."""
    ambience = f"{sources.get('ambience', 'generated')} ambience"
    if sources["mode"] in ("real", "mixed"):
        where = f"dataset {sources['dataset']}" if sources.get("dataset") else "files"
        collections = sources.get("collections") or []
        text = f"sources: {sources['real_clips']} real clip(s) from {where}"
        if collections:
            text += f" ({', '.join(collections)})"
        # a played clip is not the whole file: say so, the truth is its first bang only
        if sources.get("trimmed"):
            text += f", {sources['trimmed']} trimmed to their first bang"
        if sources["synthetic"]:
            text += f", {sources['synthetic']} SYNTHETIC"
        return f"{text}; {ambience}"
    if sources["mode"] == "synthetic":
        hint = (
            "" if sources.get("dataset") else " — no dataset found (--dataset or OUIE_DATASET_DIR)"
        )
        return f"sources: SYNTHETIC ({sources['synthetic']} generated sound(s)){hint}; {ambience}"
    return f"sources: no events played; {ambience}"


def combine(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' ``describe`` results as one (``ouie demo``)."""
    real = sum(int(item["real_clips"]) for item in items)
    synthetic = sum(int(item["synthetic"]) for item in items)
    trimmed = sum(int(item.get("trimmed", 0)) for item in items)
    datasets = sorted({item["dataset"] for item in items if item.get("dataset")})
    if real and synthetic:
        mode = "mixed"
    elif real:
        mode = "real"
    elif synthetic:
        mode = "synthetic"
    else:
        mode = "none"
    ambiences = {item.get("ambience", "generated") for item in items}
    return {
        "mode": mode,
        "dataset": ", ".join(datasets) or None,
        "real_clips": real,
        "synthetic": synthetic,
        "trimmed": trimmed,
        "collections": sorted({c for item in items for c in item.get("collections", [])}),
        "ambience": ambiences.pop() if len(ambiences) == 1 else "mixed",
    }
