from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ouie.eval.runner as runner_module
from ouie.cli import app
from ouie.eval.result import EvalResult
from tests.eval.fakes import ToneClassifier, write_dataset


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("clidata"))


@pytest.fixture
def tone_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        runner_module, "make_classifier", lambda options, settings: ToneClassifier()
    )


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: tmp / "missing", "no such directory"),
        (lambda tmp: tmp, "has no labels.csv"),
        (lambda tmp: (tmp / "file.txt", (tmp / "file.txt").write_text("x"))[0], "not a directory"),
    ],
)
def test_bad_data_dir_is_one_line(tmp_path: Path, make, expected: str) -> None:
    result = CliRunner().invoke(app, ["eval", "--data", str(make(tmp_path)), "--json", "x.json"])
    assert result.exit_code == 2
    line = _error_line(result.stderr)
    assert line.startswith("error:") and expected in line


def test_missing_options(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "--json", str(tmp_path / "o.json")])
    assert result.exit_code == 2 and "--data" in _error_line(result.stderr)
    result = CliRunner().invoke(app, ["eval", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "--json" in _error_line(result.stderr)


def test_unknown_backend_is_one_line(data_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["eval", "--data", str(data_dir), "--backend", "nope", "--json", str(tmp_path / "o.json")],
    )
    assert result.exit_code == 2
    assert "unknown classifier backend 'nope'" in _error_line(result.stderr)


def test_run_writes_json_and_report_then_compare(
    data_dir: Path, tmp_path: Path, tone_backend: None
) -> None:
    out, html = tmp_path / "a.json", tmp_path / "a.html"
    result = CliRunner().invoke(
        app,
        ["eval", "--data", str(data_dir), "--backend", "tone", "--mode", "both",
         "--json", str(out), "--report", str(html), "--latency-mixtures", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    for key in ("backend", "n_files", "event_f1", "error_rate", "false_alarms_per_hour",
                "speech_false_alarms_per_hour", "latency_s", "per_class", "clip_accuracy",
                "localisation", "versions", "collar_s", "seed", "fold"):  # fmt: skip
        assert key in data
    assert set(data["latency_s"]) >= {"p50", "p95"}
    assert set(data["per_class"]["gunshot"]) >= {"f1", "precision", "recall", "n"}
    assert data["event_f1"] == 1.0
    assert "event F1 1.000" in result.stderr
    assert html.read_text(encoding="utf-8").count("data:image/png;base64,") >= 3

    second = EvalResult.model_validate(data).model_copy(update={"backend": "other"})
    other = tmp_path / "b.json"
    other.write_text(second.model_dump_json(), encoding="utf-8")
    report, plots = tmp_path / "cmp.html", tmp_path / "plots"
    result = CliRunner().invoke(
        app,
        ["eval", "compare", str(out), str(other), "--report", str(report), "--plots", str(plots)],
    )
    assert result.exit_code == 0, result.output
    text = report.read_text(encoding="utf-8")
    assert "Backend comparison" in text and "other" in text
    assert any(p.suffix == ".png" for p in plots.iterdir())


def test_compare_refuses_other_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"backend": "x"}), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["eval", "compare", str(bad), "--report", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 2
    assert "is not an `ouie eval` result" in _error_line(result.stderr)


def test_cuda_without_a_gpu_runtime_is_one_line(data_dir: Path, tmp_path: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has onnxruntime-gpu")
    result = CliRunner().invoke(
        app,
        ["eval", "--data", str(data_dir), "--backend", "mn04", "--device", "cuda",
         "--json", str(tmp_path / "o.json")],
    )  # fmt: skip
    assert result.exit_code == 2
    line = _error_line(result.stderr)
    assert "cuda" in line and line.startswith("error:")
