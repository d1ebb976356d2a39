"""Smoke runs of ``ouie eval`` on a handful of real dev clips (FLAC, mixed sample rates)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ouie.eval.result import EvalResult
from ouie.eval.runner import EvalOptions, run_eval
from tests.eval.fakes import ToneClassifier

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def _pick(rows: list[dict[str, str]], label: str, n: int, max_s: float = 10.0, min_s: float = 0.0):
    chosen = [
        r for r in rows if r["label"] == label and min_s <= float(r["duration_s"] or 0) <= max_s
    ]
    return sorted(chosen, key=lambda r: r["file"])[:n]


@pytest.fixture(scope="module")
def handful(dev_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset dir of symlinks to 10 dev clips, with its own labels.csv."""
    with (dev_data_dir / "labels.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    picks = (
        _pick(rows, "gunshot", 2)
        + _pick(rows, "glass_breaking", 1)
        + _pick(rows, "siren", 1)
        + _pick(rows, "explosion", 1)
        + _pick(rows, "dog_bark", 1)
        + _pick(rows, "background", 1, max_s=2.0)
        + _pick(rows, "background", 1, max_s=40.0, min_s=30.0)
        + _pick(rows, "speech", 2)
    )
    root = tmp_path_factory.mktemp("devhandful")
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in picks:
            target = root / row["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(dev_data_dir / row["file"])
            writer.writerow(row)
    return root


def test_harness_runs_on_real_clips(handful: Path) -> None:
    result = run_eval(
        EvalOptions(data_dir=handful, backend="tone", latency_mixtures=2),
        classifier=ToneClassifier(),
    ).result
    assert result.n_clips == 10 and result.n_mixtures == 5
    assert result.skipped_files == []
    assert result.mixtures is not None and result.mixtures.ambience_files
    assert result.mixtures.skipped_silent == 0
    assert result.speech_hours > 0 and result.background_hours > 30 / 3600
    assert result.latency_s is not None and result.latency_s.n_mixtures == 2
    assert EvalResult.model_validate_json(result.model_dump_json()) == result


def test_yamnet_end_to_end(
    handful: Path, shared_models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ouie.models.store import MODEL_DIR_ENV

    if not (shared_models_dir / "yamnet_spectra_in.tflite").is_file():
        pytest.skip("yamnet model not in the shared models folder")
    pytest.importorskip("ai_edge_litert")
    monkeypatch.setenv(MODEL_DIR_ENV, str(shared_models_dir))
    result = run_eval(EvalOptions(data_dir=handful, backend="yamnet", latency_mixtures=2)).result
    assert result.model_id.startswith("yamnet")
    assert result.speech_events == 0  # privacy: nothing on speech
    assert result.event_f1 is not None and result.clip_accuracy is not None
    assert result.timing.x_realtime is not None and result.timing.x_realtime > 1
