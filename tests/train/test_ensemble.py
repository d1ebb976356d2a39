"""Averaging distilled builds: the merged graph scores the mean of its members, keeps the
runtime contract and the source-disjoint record, and refuses members that left out
different sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ouie.eval.builds import read_build
from ouie.node.classifiers.compact import load
from ouie.train import distill, ensemble
from ouie.train.teachers import WINDOW


def _build(tiny: tuple[Path, Path], out: Path, seed: int, excluded: str) -> Path:
    cache, models = tiny
    config = distill.DistillConfig(
        (cache,),
        models,
        out,
        exclude_sources=(excluded,),
        steps=4,
        epochs=2,
        batch_size=8,
        seed=seed,
    )
    distill.distill(config, log=False)
    return out


def test_the_ensemble_scores_the_mean_of_its_members(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    members = [_build(tiny, tmp_path / f"m{s}", s, "src/two") for s in (1, 2)]
    out = tmp_path / "ensemble"
    model_id = ensemble.build_ensemble(members, out, command="test")
    merged = load(out)
    assert merged.model_id == model_id
    windows = np.random.default_rng(0).standard_normal((3, WINDOW)).astype(np.float32) * 0.1
    member_scores = [load(m).scores(windows) for m in members]
    assert not np.allclose(member_scores[0], member_scores[1])  # two different members
    np.testing.assert_allclose(merged.scores(windows), np.mean(member_scores, axis=0), atol=1e-6)
    build = read_build(out)  # what ouie eval --split source --builds reads
    assert build.info.excluded_sources == ["src/two"]
    assert build.info.model_id == model_id
    recipe = ensemble.EnsembleRecipe.model_validate_json(
        (out / ensemble.ENSEMBLE_FILE).read_text(encoding="utf-8")
    )
    assert [r.seed for r in recipe.members] == [1, 2]
    assert recipe.member_ids == [load(m).model_id for m in members]


def test_members_that_left_out_different_sources_are_refused(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    one = _build(tiny, tmp_path / "one", 1, "src/one")
    two = _build(tiny, tmp_path / "two", 1, "src/two")
    with pytest.raises(ValueError, match="leave out different sources"):
        ensemble.build_ensemble([one, two], tmp_path / "out")
    assert (
        ensemble.main(["--member", str(one), "--member", str(two), "--out", str(tmp_path / "o")])
        == 2
    )
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_a_build_is_refused_in_one_line(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = _build(tiny, tmp_path / "one", 1, "src/two")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        ensemble.main(["--member", str(one), "--member", str(empty), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "not a build of ouie.train.distill" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one member is no ensemble
        ensemble.main(["--member", str(one), "--out", str(tmp_path / "o")])


def test_the_data_card_describes_every_member(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    from ouie.train import distill_card

    members = [_build(tiny, tmp_path / f"m{s}", s, "src/two") for s in (1, 2)]
    out = tmp_path / "ensemble"
    ensemble.build_ensemble(members, out, command="python -m ouie.train.ensemble ...")
    data = tmp_path / "data"
    data.mkdir()
    (data / "labels.csv").write_text(
        "file,label,source_repo,licence\na/g1.flac,gunshot,src/one,CC0\n"
        "b/g2.flac,gunshot,src/two,CC BY\n",
        encoding="utf-8",
    )
    card_dir = tmp_path / "card"
    assert (
        distill_card.main(["--build", str(out), "--data", str(data), "--out", str(card_dir)]) == 0
    )
    card = (card_dir / distill_card.CARD_FILE).read_text(encoding="utf-8")
    for member in members:
        assert f"### Member {load(member).model_id}" in card
    assert "seed 1;" in card and "seed 2;" in card
    assert "| src/one | 1 |" in card and "src/two" not in card
