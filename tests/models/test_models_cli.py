"""``ouie models list|verify|import`` against a temporary model directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from ouie.cli import app
from ouie.models import cli as models_cli
from ouie.models.store import KNOWN_FILES, resolve, sidecar_digest
from ouie.node.classifiers.yamnet import DESCRIPTION as YAMNET_DESCRIPTION
from tests._services import need

runner = CliRunner()
YAMNET_FILES = ("yamnet_spectra_in.tflite", "yamnet_class_map.csv")


def ouie(*args: str) -> Result:
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("OUIE_MODEL_DIR", str(folder))
    return folder


def fake_export(pt_path: Path, out_path: Path) -> None:
    assert pt_path.name == "mn04_as_mAP_432.pt"
    out_path.write_bytes(b"onnx from " + pt_path.name.encode())


@pytest.fixture
def fake_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models_cli, "_load_exporter", lambda: fake_export)


def test_list_names_backends_and_missing_files(model_dir: Path) -> None:
    result = ouie("models", "list")
    assert result.exit_code == 0, result.output
    assert "yamnet" in result.output
    assert YAMNET_DESCRIPTION in result.output
    for name in YAMNET_FILES:
        assert f"{name}  missing" in result.output
    assert "ouie models import --from DIR" in result.output


def test_verify_on_an_empty_directory(model_dir: Path) -> None:
    result = ouie("models", "verify")
    assert result.exit_code == 0, result.output
    assert "nothing to verify" in result.output


@pytest.mark.shared
def test_import_then_list_and_verify(
    model_dir: Path, shared_models_dir: Path, fake_exporter: None
) -> None:
    result = ouie("models", "import", "--from", str(shared_models_dir))
    assert result.exit_code == 0, result.output
    for name, known in KNOWN_FILES.items():
        if known.sha256 is not None:
            assert resolve(name, model_dir) == model_dir / name
    assert (model_dir / "LICENSE-YAMNet-coralmicro.txt").is_file()
    onnx = model_dir / "mn04_as.onnx"
    assert onnx.read_bytes() == b"onnx from mn04_as_mAP_432.pt"
    assert sidecar_digest(onnx).is_file()
    assert resolve("mn04_as.onnx", model_dir) == onnx
    assert not list(model_dir.glob("*.part"))

    listed = ouie("models", "list")
    assert listed.exit_code == 0, listed.output
    for name in YAMNET_FILES:
        assert f"{name}  present" in listed.output

    verified = ouie("models", "verify")
    assert verified.exit_code == 0, verified.output
    assert "all 8 model file(s) match" in verified.output

    again = ouie("models", "import", "--from", str(shared_models_dir))
    assert again.exit_code == 0, again.output
    assert "already present" in again.output
    assert "already exported" in again.output


@pytest.mark.shared
def test_import_without_torch_explains_the_train_extra(
    model_dir: Path, shared_models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models_cli, "_load_exporter", lambda: None)
    result = ouie("models", "import", "--from", str(shared_models_dir))
    assert result.exit_code == 0, result.output
    assert "train extra" in result.output
    assert "pip install 'ouie[train]'" in result.output
    assert (model_dir / "yamnet_spectra_in.tflite").is_file()
    assert not (model_dir / "mn04_as.onnx").exists()


@pytest.mark.shared
def test_import_refuses_a_file_with_the_wrong_digest(
    model_dir: Path, shared_models_dir: Path, tmp_path: Path, fake_exporter: None
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(shared_models_dir / "yamnet_spectra_in.tflite", source)
    (source / "yamnet_class_map.csv").write_text("index,mid,display_name\n0,/m/x,Not it\n")
    result = ouie("models", "import", "--from", str(source))
    assert result.exit_code == 1, result.output
    assert "refused" in result.output
    assert (model_dir / "yamnet_spectra_in.tflite").is_file()
    assert not (model_dir / "yamnet_class_map.csv").exists()
    assert "not exported" in result.output  # no mn04 weights in the source


def test_import_from_a_folder_without_model_files(model_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = ouie("models", "import", "--from", str(empty))
    assert result.exit_code == 1
    assert "no ouie model files" in result.output
    missing = ouie("models", "import", "--from", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2


@pytest.mark.shared
def test_verify_fails_on_a_damaged_file(
    model_dir: Path, shared_models_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "other-models"
    folder.mkdir()
    shutil.copy(shared_models_dir / "yamnet_class_map.csv", folder)
    with (folder / "yamnet_class_map.csv").open("a") as handle:
        handle.write("521,/m/extra,Extra\n")
    result = ouie("models", "verify", "--model-dir", str(folder))
    assert result.exit_code == 1, result.output
    assert "yamnet_class_map.csv" in result.output
    assert "bad digest" in result.output
    listed = ouie("models", "list", "--model-dir", str(folder))
    assert "yamnet_class_map.csv  bad digest" in listed.output


def test_verify_fails_on_an_export_that_no_longer_matches_its_sidecar(model_dir: Path) -> None:
    model_dir.mkdir()
    onnx = model_dir / "mn04_as.onnx"
    onnx.write_bytes(b"first export")
    sidecar_digest(onnx).write_text("0" * 64 + "  mn04_as.onnx\n")
    result = ouie("models", "verify")
    assert result.exit_code == 1, result.output
    assert "mn04_as.onnx" in result.output
    onnx_no_sidecar = model_dir / "mn04_as.onnx.sha256"
    onnx_no_sidecar.unlink()
    result = ouie("models", "verify")
    assert result.exit_code == 1, result.output
    assert "no digest" in result.output


@pytest.mark.shared
@pytest.mark.slow
def test_import_exports_mn04_with_torch(model_dir: Path, shared_models_dir: Path) -> None:
    need("torch")  # the mn04 ONNX export needs the train extra
    result = ouie("models", "import", "--from", str(shared_models_dir))
    assert result.exit_code == 0, result.output
    assert "exported" in result.output
    assert resolve("mn04_as.onnx", model_dir) == model_dir / "mn04_as.onnx"


def _weights_only_source(shared_models_dir: Path, tmp_path: Path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(shared_models_dir / "mn04_as_mAP_432.pt", source)
    return source


@pytest.mark.shared
def test_a_failing_export_is_reported_and_exits_non_zero(
    model_dir: Path, shared_models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(pt_path: Path, out_path: Path) -> None:
        raise RuntimeError("state_dict mismatch [features.3]")

    monkeypatch.setattr(models_cli, "_load_exporter", lambda: broken)
    result = ouie(
        "models", "import", "--from", str(_weights_only_source(shared_models_dir, tmp_path))
    )
    assert result.exit_code == 1, result.output
    assert "export failed: RuntimeError: state_dict mismatch [features.3]" in result.output
    assert (model_dir / "mn04_as_mAP_432.pt").is_file()
    assert not (model_dir / "mn04_as.onnx").exists()


@pytest.mark.shared
def test_an_export_missing_onnx_points_to_the_train_extra(
    model_dir: Path, shared_models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def needs_onnx(pt_path: Path, out_path: Path) -> None:
        raise ModuleNotFoundError("No module named 'onnx'", name="onnx")

    monkeypatch.setattr(models_cli, "_load_exporter", lambda: needs_onnx)
    result = ouie(
        "models", "import", "--from", str(_weights_only_source(shared_models_dir, tmp_path))
    )
    assert result.exit_code == 0, result.output
    assert "pip install 'ouie[train]'" in result.output
