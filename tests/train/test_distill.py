"""Distilling ouie-compact from the teachers: window labels, the teacher cache file, the
log-mel augmentation, source exclusion, and a smoke run on a tiny made-up cache that must
give a loadable model and a build.json the source-disjoint evaluation can read."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.eval.builds import read_build
from ouie.node.classifiers.compact import load
from ouie.node.frontends.yamnet import LOG_OFFSET
from ouie.train import distill
from ouie.train.compact import PcenChannel
from ouie.train.teacher_head import (
    UNLABELLED,
    WindowLabels,
    fit_head,
    label_windows,
    patch_peak_db,
)
from ouie.train.teachers import (
    HOP,
    WINDOW,
    TeacherCache,
    clip_windows,
)

GUNSHOT = EVENT_LABELS.index(EventLabel.GUNSHOT)


def _heard_as_shots(path: Path, windows: slice) -> TeacherCache:
    """Rewrite the cache at ``path`` with YAMNet hearing ``windows`` as shots (0.9 on the
    first mapped mid, a gunshot one); the rewritten cache is returned."""
    cache = TeacherCache.load(path)
    cache.outputs.yamnet_scores[windows, 0] = 0.9
    cache.save(path)
    return cache


def test_clip_windows_follow_the_node_grid_and_pad_short_clips() -> None:
    audio = np.arange(WINDOW + 2 * HOP + 10, dtype=np.float32)
    windows = clip_windows(audio)
    assert windows.shape == (3, WINDOW)
    np.testing.assert_array_equal(windows[1], audio[HOP : HOP + WINDOW])
    short = clip_windows(np.ones(100, dtype=np.float32))
    assert short.shape == (1, WINDOW)
    assert short[0, :100].sum() == 100 and short[0, 100:].sum() == 0


def test_event_windows_are_positive_quiet_windows_of_target_clips_are_left_out() -> None:
    # clip 0: gunshot with a loud second window; clip 1: non-target
    peak = np.array([-40.0, -5.0, -30.0, -20.0, -20.0], dtype=np.float32)
    owner = np.array([0, 0, 0, 1, 1], dtype=np.int32)
    labels = label_windows(["gunshot", "door_knock"], owner, peak)
    np.testing.assert_array_equal(labels.targets[:, GUNSHOT], [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(labels.weights, [0, 1, 0, 1, 1])
    assert labels.targets[3:].sum() == 0


def test_unlabelled_windows_are_neither_positive_nor_negative() -> None:
    peak = np.array([-5.0, -30.0, -5.0], dtype=np.float32)
    owner = np.array([0, 0, 1], dtype=np.int32)
    labels = label_windows([UNLABELLED, "rain"], owner, peak)
    np.testing.assert_array_equal(labels.weights, [0, 0, 1])
    assert labels.targets.sum() == 0


def test_patch_peak_follows_the_loudest_frame() -> None:
    quiet = np.full((1, 96, 64), np.log(0.001), dtype=np.float32)
    loud = quiet.copy()
    loud[0, 40, :] = np.log(1.0)
    assert patch_peak_db(loud)[0] - patch_peak_db(quiet)[0] > 40.0


def test_linear_head_learns_a_separable_label() -> None:
    rng = np.random.default_rng(0)
    features = rng.standard_normal((400, 6)).astype(np.float32)
    targets = np.zeros((400, len(EVENT_LABELS)), dtype=np.float32)
    targets[:, GUNSHOT] = features[:, 0] > 1.0
    head = fit_head(features, WindowLabels(targets, np.ones(400, np.float32)), epochs=100)
    scores = head(features)[:, GUNSHOT]
    positive, negative = scores[targets[:, GUNSHOT] > 0], scores[targets[:, GUNSHOT] == 0]
    auc = (positive[:, None] > negative[None, :]).mean()
    assert auc > 0.98
    assert positive.mean() > negative.mean() + 0.3


def test_cache_round_trips(tiny: tuple[Path, Path]) -> None:
    cache = TeacherCache.load(tiny[0])
    assert cache.sources == ["src/one", "src/one", "src/two", "src/two"]
    assert cache.patches.shape == (24, 96, 64)
    assert cache.outputs.mn04_embedding.shape == (24, 512)


def test_excluded_sources_leave_no_window_behind(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cache, models = tiny
    config = distill.DistillConfig((cache,), models, tmp_path, exclude_sources=("src/two",))
    data = distill.load_data(config)
    assert data.sources == ["src/one"]
    assert len(data.patches) == 12
    assert data.soft[:6, GUNSHOT].min() == pytest.approx(0.45, abs=1e-3)  # mean of 0.9 and mn04's 0
    with pytest.raises(ValueError, match="not in the cache"):
        distill.load_data(
            distill.DistillConfig((cache,), models, tmp_path, exclude_sources=("src/three",))
        )


def test_unlabelled_clips_get_their_share_and_are_never_mixing_backgrounds(
    tiny_unlabelled: tuple[Path, Path], tmp_path: Path
) -> None:
    cache, models = tiny_unlabelled
    config = distill.DistillConfig((cache,), models, tmp_path, unlabelled_share=0.2)
    data = distill.load_data(config)
    unlabelled = np.arange(24, 30)  # the fifth clip's six windows
    assert data.sample_p[unlabelled].sum() == pytest.approx(0.2)
    assert not set(unlabelled) & set(data.negative_index.tolist())
    assert set(data.negative_index.tolist()) == set(range(6, 12)) | set(range(18, 24))
    assert data.labels.weights[unlabelled].sum() == 0
    off = distill.load_data(distill.DistillConfig((cache,), models, tmp_path, unlabelled_share=0))
    assert off.sample_p[unlabelled].sum() == pytest.approx(0.0)
    assert off.sample_p.sum() == pytest.approx(1.0)


def test_windows_the_teachers_hear_as_a_label_are_drawn_with_its_event_windows(
    tiny_unlabelled: tuple[Path, Path], tmp_path: Path
) -> None:
    path, models = tiny_unlabelled
    _heard_as_shots(path, slice(24, 27))  # three unlabelled windows sound like shots
    unlabelled = np.arange(24, 30)
    heard = np.arange(24, 27)
    config = distill.DistillConfig((path,), models, tmp_path, unlabelled_share=0.2)
    off = distill.load_data(config)
    on = distill.load_data(
        distill.DistillConfig((path,), models, tmp_path, unlabelled_share=0.2, teacher_positive=0.2)
    )
    # off: the shot windows of the gunshot clips share half the batch; on: those three too
    assert off.sample_p[heard].sum() == pytest.approx(0.2 / 2)
    assert on.sample_p[heard].sum() > off.sample_p[heard].sum() + 0.1
    assert on.sample_p.sum() == pytest.approx(1.0)
    # the teachers' hearing moves no window into the hard labels or the mixing backgrounds
    assert on.labels.weights[unlabelled].sum() == 0
    assert set(on.negative_index.tolist()) == set(off.negative_index.tolist())


def test_augmentation_keeps_shapes_and_mixes_only_where_asked() -> None:
    rng = np.random.default_rng(1)
    x = torch.full((4, 96, 64), float(np.log(0.001)))
    x[:, 40:50, :] = 0.0
    background = torch.full((4, 96, 64), -1.0)
    mix = torch.tensor([True, False, True, False])
    out = distill.augment(x.clone(), background, mix, rng)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    assert float(out.min()) >= float(np.log(0.001)) - 1e-4


def test_reflection_comb_notches_each_row_within_an_echos_bounds() -> None:
    gains = distill.reflection_comb(200, np.random.default_rng(2))
    assert gains.shape == (200, 64) and np.isfinite(gains).all()
    # at most the direct sound and two echoes of 0.95 in phase
    assert float(gains.max()) <= np.log(1.0 + 2 * 0.95) + 1e-6
    # every row is a comb, not a level change: its bands span at least 2 dB
    assert float((gains.max(axis=1) - gains.min(axis=1)).min()) > 2 * distill.DB
    with_combs = distill.augment(
        torch.zeros(3, 96, 64),
        torch.zeros(3, 96, 64),
        torch.zeros(3, dtype=torch.bool),
        np.random.default_rng(3),
        comb_probability=1.0,
    )
    assert torch.isfinite(with_combs).all()


def test_freq_mixstyle_moves_band_statistics_towards_another_row_only_where_drawn() -> None:
    rng = np.random.default_rng(4)
    x = torch.randn(6, 96, 64) * torch.linspace(0.5, 2.0, 64) + torch.linspace(-3.0, 1.0, 64)
    x[3:] = x[3:] * 0.2 - 5.0  # three rows from another "recording chain"
    untouched = distill.freq_mixstyle(x.clone(), rng, 0.0)
    assert torch.equal(untouched, x)
    mixed = distill.freq_mixstyle(x.clone(), np.random.default_rng(5), 1.0)
    assert mixed.shape == x.shape and torch.isfinite(mixed).all()
    # each band's time course keeps its shape (an affine map per row and band) ...
    corr = torch.stack(
        [
            torch.corrcoef(torch.stack([x[i, :, b], mixed[i, :, b]]))[0, 1]
            for i in range(6)
            for b in range(0, 64, 9)
        ]
    )
    assert float(corr.min()) > 0.999
    # ... while its level moves: rows of one chain borrow the other's band means
    moved = (mixed.mean(dim=1) - x.mean(dim=1)).abs().max(dim=1).values
    assert float(moved.max()) > 1.0
    # the mixed statistics stay inside the span of the two rows' own
    means = x.mean(dim=1)
    lo, hi = means.min(dim=0).values, means.max(dim=0).values
    out_means = mixed.mean(dim=1)
    assert bool(((out_means >= lo - 1e-4) & (out_means <= hi + 1e-4)).all())


def test_augmentation_applies_freq_mixstyle_only_when_asked() -> None:
    x = torch.randn(8, 96, 64) + torch.linspace(-4.0, 0.0, 64)
    x[4:] -= 3.0
    args = (torch.full((8, 96, 64), -6.0), torch.zeros(8, dtype=torch.bool))
    off = distill.augment(x.clone(), *args, np.random.default_rng(6))
    again = distill.augment(x.clone(), *args, np.random.default_rng(6), mixstyle_probability=0.0)
    on = distill.augment(x.clone(), *args, np.random.default_rng(6), mixstyle_probability=1.0)
    assert torch.equal(off, again)
    assert not torch.allclose(off, on)


def test_smoke_distillation_gives_a_loadable_model_and_build_record(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    cache, models = tiny
    out = tmp_path / "build"
    config = distill.DistillConfig(
        (cache,), models, out, exclude_sources=("src/two",), steps=4, epochs=2, batch_size=8
    )
    model_path = distill.distill(config, log=False)
    build = read_build(out)  # what ouie eval --split source --builds reads
    assert build.info.excluded_sources == ["src/two"]
    assert build.info.trained_sources == ["src/one"]
    classifier = load(out)
    assert build.info.model_id == classifier.model_id
    recipe = json.loads((out / distill.RECIPE_FILE).read_text(encoding="utf-8"))
    assert recipe["steps"] == 4 and recipe["channel_norm"] is True
    assert recipe["comb_probability"] == distill.DistillConfig.comb_probability
    scores = classifier.scores(np.zeros((2, WINDOW), np.float32))
    assert scores.shape == (2, len(EVENT_LABELS))
    assert model_path.is_file() and not (out / "checkpoint.pt").exists()


def test_logit_matching_trains_and_is_recorded(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cache, models = tiny
    config = distill.DistillConfig(
        (cache,), models, tmp_path / "b", steps=4, epochs=2, batch_size=8, logit_weight=0.1
    )
    distill.distill(config, log=False)
    recipe = json.loads((tmp_path / "b" / distill.RECIPE_FILE).read_text(encoding="utf-8"))
    assert recipe["logit_weight"] == 0.1
    assert all(np.isfinite(recipe["losses"]))
    plain = distill.DistillConfig(
        (cache,), models, tmp_path / "p", steps=4, epochs=2, batch_size=8, logit_weight=0.0
    )
    distill.distill(plain, log=False)
    other = json.loads((tmp_path / "p" / distill.RECIPE_FILE).read_text(encoding="utf-8"))
    assert recipe["losses"][0] > other["losses"][0]  # the extra term adds to the loss


def test_mixstyle_and_quieter_mixtures_train_and_are_recorded(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    cache, models = tiny
    config = distill.DistillConfig(
        (cache,),
        models,
        tmp_path / "b",
        steps=4,
        epochs=2,
        batch_size=8,
        freq_mixstyle=0.5,
        min_mix_db=-9.0,
    )
    distill.distill(config, log=False)
    recipe = json.loads((tmp_path / "b" / distill.RECIPE_FILE).read_text(encoding="utf-8"))
    assert recipe["freq_mixstyle"] == 0.5 and recipe["min_mix_db"] == -9.0
    assert all(np.isfinite(recipe["losses"]))


def test_augmented_copies_keep_label_and_source(tmp_path: Path) -> None:
    import soundfile as sf

    from ouie.eval.dataset import load_dataset
    from ouie.train.augment_set import chain, write_augmented

    data = tmp_path / "data"
    (data / "x").mkdir(parents=True)
    rng = np.random.default_rng(2)
    sf.write(str(data / "x" / "shot.flac"), rng.standard_normal(24000) * 0.1, 16000)
    (data / "labels.csv").write_text(
        "file,label,source_repo,licence\nx/shot.flac,gunshot,some/repo,CC0\n", encoding="utf-8"
    )
    out = write_augmented([data], tmp_path / "aug", copies=3, seed=1)
    clips = load_dataset(out)
    assert [c.label for c in clips] == ["gunshot"] * 3
    assert {c.source_repo for c in clips} == {"some/repo"}  # leaving the source out leaves these
    audio = rng.standard_normal(16000).astype(np.float32) * 0.1
    names = {chain(audio, np.random.default_rng(seed))[1] for seed in range(40)}
    assert any("clip" in name for name in names)  # near, saturated captures
    assert any("lowpass" in name for name in names)  # far or 8 kHz captures
    first = chain(audio, np.random.default_rng(7))[0]
    np.testing.assert_array_equal(first, chain(audio, np.random.default_rng(7))[0])
    assert np.abs(first).max() <= 1.0


def test_data_card_lists_every_training_file_but_the_excluded(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from ouie.train import distill_card

    cache, models = tiny
    build = tmp_path / "build"
    distill.distill(
        distill.DistillConfig(
            (cache,), models, build, exclude_sources=("src/two",), steps=2, epochs=1, batch_size=4
        ),
        log=False,
    )
    data = tmp_path / "data"
    data.mkdir()
    (data / "labels.csv").write_text(
        "file,label,source_repo,licence\n"
        "a/g1.flac,gunshot,src/one,CC0\na/n1.flac,rain,src/one,CC0\n"
        "b/g2.flac,gunshot,src/two,CC BY\n",
        encoding="utf-8",
    )
    out = tmp_path / "card"
    assert distill_card.main(["--build", str(build), "--data", str(data), "--out", str(out)]) == 0
    listed = (out / distill_card.FILES_LIST).read_text(encoding="utf-8").splitlines()
    assert listed[1:] == ["data,a/g1.flac,gunshot,src/one,CC0", "data,a/n1.flac,rain,src/one,CC0"]
    card = (out / distill_card.CARD_FILE).read_text(encoding="utf-8")
    assert "| src/one | 2 |" in card and "src/two" not in card


def test_every_command_line_number_is_a_recipe_setting() -> None:
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(distill.DistillConfig)}
    for name in distill.FLOAT_OPTIONS:
        assert name in fields and isinstance(getattr(distill.DistillConfig, name), float), name


def test_hard_veto_lifts_only_the_hard_negatives_the_teachers_contradict(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    path, models = tiny
    _heard_as_shots(path, slice(6, 8))  # two windows of the rain clip sound like shots
    off = distill.load_data(distill.DistillConfig((path,), models, tmp_path))
    on = distill.load_data(distill.DistillConfig((path,), models, tmp_path, hard_veto=0.2))
    assert off.hard_mask is None
    assert on.hard_mask is not None
    vetoed = np.argwhere(on.hard_mask == 0)
    # only the rain clip's two shot-like windows, only for gunshot; the gunshot clips'
    # windows (soft 0.45 too) keep every hard label, positives and negatives alike
    assert vetoed.tolist() == [[6, GUNSHOT], [7, GUNSHOT]]
    assert np.array_equal(on.labels.weights, off.labels.weights)
    config = distill.DistillConfig(
        (path,), models, tmp_path / "b", steps=4, epochs=2, batch_size=8, hard_veto=0.2
    )
    distill.distill(config, log=False)
    recipe = json.loads((tmp_path / "b" / distill.RECIPE_FILE).read_text(encoding="utf-8"))
    assert recipe["hard_veto"] == 0.2 and all(np.isfinite(recipe["losses"]))


def test_teacher_mix_logit_takes_the_mean_of_the_teachers_logits(tiny: tuple[Path, Path]) -> None:
    path, models = tiny
    cache = TeacherCache.load(path)
    cache.outputs.mn04_scores[:, 0] = 0.01  # mn04 doubts the shots YAMNet hears at 0.9
    cache.save(path)
    cache = TeacherCache.load(path)
    mean = distill.soft_targets(cache, models, "mean")
    logit = distill.soft_targets(cache, models, "logit")
    odds = np.sqrt(0.9 / 0.1 * 0.01 / 0.99)
    assert mean[0, GUNSHOT] == pytest.approx(0.455, abs=1e-3)
    assert logit[0, GUNSHOT] == pytest.approx(odds / (1 + odds), abs=1e-3)
    with pytest.raises(ValueError, match="unknown teacher mix"):
        distill.soft_targets(cache, models, "max")


def test_ema_exports_an_average_of_the_weights_and_is_recorded(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    cache, models = tiny
    kwargs = {"steps": 6, "epochs": 2, "batch_size": 8}
    data = distill.load_data(distill.DistillConfig((cache,), models, tmp_path / "x"))
    nets = []
    for ema in (0.0, 0.5):
        torch.manual_seed(0)
        net = distill.CompactNet(aux_outputs=data.embedding.shape[1])
        config = distill.DistillConfig((cache,), models, tmp_path / f"e{ema}", ema=ema, **kwargs)
        config.out_dir.mkdir(parents=True)
        distill.fit(net, data, config, log=False)
        nets.append(net.state_dict())
    # same data, seed and steps: only the exported weights differ, the average of the path
    weights = [k for k, v in nets[0].items() if v.dtype.is_floating_point]
    assert any(not torch.equal(nets[0][k], nets[1][k]) for k in weights)
    config = distill.DistillConfig((cache,), models, tmp_path / "b", ema=0.9, **kwargs)
    distill.distill(config, log=False)
    recipe = json.loads((tmp_path / "b" / distill.RECIPE_FILE).read_text(encoding="utf-8"))
    assert recipe["ema"] == 0.9 and all(np.isfinite(recipe["losses"]))
    assert load(tmp_path / "b").model_id.startswith("ouie-compact@")


def test_source_balance_shares_a_labels_draws_between_its_sources(
    tiny_unlabelled: tuple[Path, Path], tmp_path: Path
) -> None:
    path, models = tiny_unlabelled
    cache = _heard_as_shots(path, slice(24, 26))  # two windows of a third source sound like shots
    labels = label_windows(cache.labels, cache.clip_of_window, patch_peak_db(cache.patches))
    # the gunshot windows load_data draws: hard-labelled, or heard as shots by the teachers
    event = (labels.targets[:, GUNSHOT] > 0) | (cache.outputs.yamnet_scores[:, 0] > 0)
    sources = {"src/one": slice(0, 6), "src/two": slice(12, 18), "debian:pkg": slice(24, 30)}
    counts = {name: int(event[index].sum()) for name, index in sources.items()}
    assert counts["debian:pkg"] == 2 and counts["src/one"] != counts["debian:pkg"]

    def drawn(balance: float) -> dict[str, float]:
        config = distill.DistillConfig(
            (path,),
            models,
            tmp_path,
            unlabelled_share=0.0,  # so the pool's share does not add to its shot windows
            teacher_positive=0.2,
            source_balance=balance,
        )
        p = distill.load_data(config).sample_p
        assert p.sum() == pytest.approx(1.0)
        return {name: float(p[index][event[index]].sum()) for name, index in sources.items()}

    for balance in (1.0, 0.5, 0.0):  # 1: every window alike; 0: every source alike
        weights = {name: count**balance for name, count in counts.items()}
        for name, share in drawn(balance).items():
            assert share == pytest.approx(0.5 * weights[name] / sum(weights.values()))


def test_generated_sparse_event_windows_are_trusted_as_their_label() -> None:
    alarm = EVENT_LABELS.index(EventLabel.CAR_ALARM)
    siren = EVENT_LABELS.index(EventLabel.SIREN)
    soft = np.zeros((4, len(EVENT_LABELS)), dtype=np.float32)
    soft[:, siren] = 0.7  # the teachers hear every window as a siren, none as a car alarm
    soft[:, alarm] = 0.05
    targets = np.zeros_like(soft)
    targets[[0, 2], alarm] = 1.0  # event windows of car-alarm clips
    targets[3, siren] = 1.0  # a generated siren: not a sparse label, the teachers decide
    sources = np.array(
        [
            distill.SYNTH_SOURCE,
            distill.SYNTH_SOURCE,
            "Fris0uman/CDDA-Soundpacks",
            distill.SYNTH_SOURCE,
        ]
    )
    out = distill.trusted_generated_targets(soft, targets, sources, 0.9)
    np.testing.assert_allclose(out[0, [alarm, siren]], [0.9, 0.1], rtol=1e-6)
    np.testing.assert_array_equal(out[1:], soft[1:])  # a tail, a real recording, a siren
    assert soft[0, alarm] == pytest.approx(0.05)  # the input is not changed in place


def test_consistent_targets_take_yamnets_augmented_half_only_on_drawn_rows() -> None:
    clean = torch.full((3, len(EVENT_LABELS)), 0.4)
    yamnet_augmented = torch.zeros(3, len(EVENT_LABELS))
    yamnet_augmented[:, GUNSHOT] = 0.9
    mn04_clean = torch.full((3, len(EVENT_LABELS)), 0.1)
    rows = torch.tensor([True, False, True])
    out = distill.consistent_targets(clean, yamnet_augmented, mn04_clean, rows)
    assert out[0, GUNSHOT] == pytest.approx(0.5) and out[0, GUNSHOT + 1] == pytest.approx(0.05)
    assert torch.equal(out[1], clean[1])  # not drawn: the clean windows' mean
    assert torch.equal(out[2], out[0])


class _FakeYamnet:
    """Stands in for YAMNet: records the patches it is asked about, hears every one as a shot."""

    seen: ClassVar[list[np.ndarray]] = []

    def __init__(self, models: Path, threads: int) -> None:
        del models, threads

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        type(self).seen.append(patches.copy())
        out = np.zeros((len(patches), len(EVENT_LABELS)), dtype=np.float32)
        out[:, GUNSHOT] = 1.0
        return out


def test_consistent_yamnet_teaches_on_the_augmented_patches_and_is_recorded(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, models = tiny
    _FakeYamnet.seen = []
    monkeypatch.setattr(distill, "ConsistentYamnet", _FakeYamnet)
    config = distill.DistillConfig(
        (cache,), models, tmp_path / "b", steps=3, epochs=1, batch_size=8, consistent_yamnet=1.0
    )
    distill.distill(config, log=False)
    assert len(_FakeYamnet.seen) == 3  # every step, every row
    assert all(p.shape == (8, 96, 64) and p.dtype == np.float32 for p in _FakeYamnet.seen)
    clean = TeacherCache.load(cache).patches.astype(np.float32)
    augmented = _FakeYamnet.seen[0]
    # the teacher heard what the student trained on (gain, EQ, masks), not a cached window
    assert not any(np.allclose(row, window, atol=1e-3) for row in augmented for window in clean)
    recipe = json.loads((tmp_path / "b" / distill.RECIPE_FILE).read_text(encoding="utf-8"))
    assert recipe["consistent_yamnet"] == 1.0
    _refused(
        cache, models, tmp_path / "l", "mean target", consistent_yamnet=1.0, teacher_mix="logit"
    )


def _refused(cache: Path, models: Path, out: Path, match: str, **options: Any) -> None:
    """A one-step build with ``options`` is refused before training, with ``match`` said."""
    with pytest.raises(ValueError, match=match):
        config = distill.DistillConfig((cache,), models, out, steps=1, batch_size=8, **options)
        distill.distill(config, log=False)


def test_augmentation_hands_out_the_mixture_before_the_channel_augmentations() -> None:
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.normal(-3.0, 0.5, (4, 96, 64)).astype(np.float32))
    background = torch.from_numpy(rng.normal(-3.0, 0.5, (4, 96, 64)).astype(np.float32))
    mix = torch.tensor([True, False, True, False])
    mixed: list[torch.Tensor] = []
    out = distill.augment(x, background, mix, np.random.default_rng(1), mixed=mixed)
    (heard,) = mixed
    torch.testing.assert_close(heard[~mix], x[~mix], atol=1e-5, rtol=1e-5)  # not yet changed
    assert bool((heard[mix] > x[mix]).all())  # the background adds to every bin
    assert not torch.allclose(heard, out, atol=1e-3)  # gain, EQ and masks come after
    plain = distill.augment(x, background, mix, np.random.default_rng(1))
    torch.testing.assert_close(plain, out)  # asking for the mixture draws nothing more


def test_consistent_mixtures_ask_yamnet_about_mixed_rows_only(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, models = tiny
    monkeypatch.setattr(distill, "ConsistentYamnet", _FakeYamnet)
    for probability, expected_rows in ((1.0, 8), (0.0, None)):
        _FakeYamnet.seen = []
        out = tmp_path / f"m{probability}"
        config = distill.DistillConfig(
            (cache,),
            models,
            out,
            steps=3,
            epochs=1,
            batch_size=8,
            consistent_mixtures=1.0,
            mix_probability=probability,
        )
        distill.distill(config, log=False)
        if expected_rows is None:
            assert _FakeYamnet.seen == []  # nothing mixed, nothing asked
        else:
            assert [len(p) for p in _FakeYamnet.seen] == [expected_rows] * 3
        recipe = json.loads((out / distill.RECIPE_FILE).read_text(encoding="utf-8"))
        assert recipe["consistent_mixtures"] == 1.0
    _refused(
        cache, models, tmp_path / "x", "exclude each other",
        consistent_mixtures=1.0, consistent_yamnet=1.0,
    )  # fmt: skip


def test_pcen_channel_follows_the_recursive_filter_and_ignores_gain() -> None:
    """The matrix form is the first-order filter started from the patch mean, and a
    recording chain's gain moves the channel by little (α = 0.98)."""
    pcen = PcenChannel(frames=12, time_constant_s=0.05, hop_s=0.01)
    rng = np.random.default_rng(5)
    logmel = np.log(rng.uniform(0.01, 2.0, size=(2, 12, 3)) + LOG_OFFSET)
    energy = np.exp(logmel) - LOG_OFFSET
    s = 1.0 - np.exp(-0.01 / 0.05)
    smooth = energy.mean(axis=1)
    expected = np.empty_like(energy)
    for t in range(12):
        smooth = (1 - s) * smooth + s * energy[:, t]
        expected[:, t] = (energy[:, t] / (1e-6 + smooth) ** 0.98 + 2.0) ** 0.5 - 2.0**0.5
    got = pcen(torch.from_numpy(logmel).float()).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    louder = pcen(torch.from_numpy(np.log(energy * 100.0 + LOG_OFFSET)).float()).numpy()
    assert np.abs(louder - got).max() < 0.1 * np.abs(got).max()
    onset = np.full((1, 12, 1), np.log(0.01 + LOG_OFFSET))
    onset[0, 6:, 0] = np.log(1.0 + LOG_OFFSET)  # a sound starts at frame 6
    response = pcen(torch.from_numpy(onset).float()).numpy()[0, :, 0]
    assert response[6] == response.max() and response[6] > 3 * response[5]


def test_pcen_builds_train_export_and_are_recorded(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cache, models = tiny
    config = distill.DistillConfig(
        (cache,), models, tmp_path / "b", steps=4, epochs=2, batch_size=8, pcen=True
    )
    distill.distill(config, log=False)
    recipe = json.loads((tmp_path / "b" / distill.RECIPE_FILE).read_text(encoding="utf-8"))
    assert recipe["pcen"] is True and all(np.isfinite(recipe["losses"]))
    scores = load(tmp_path / "b").scores(np.zeros((2, WINDOW), np.float32))
    assert scores.shape == (2, len(EVENT_LABELS)) and np.isfinite(scores).all()


def test_vocabulary_target_keeps_the_classes_the_teachers_use_z_scored(
    tiny: tuple[Path, Path],
) -> None:
    outputs = TeacherCache.load(tiny[0]).outputs
    n = outputs.yamnet_scores.shape[0]
    yamnet = np.full_like(outputs.yamnet_scores, 0.01)
    mn04 = np.full_like(outputs.mn04_scores, 0.01)
    yamnet[: n // 2, 3] = 0.8  # one YAMNet class heard on half the windows
    mn04[::3, 7] = 0.25  # one mn04 class just over the vocabulary's floor
    mn04[::2, 9] = 0.15  # one never reaching it: left out
    heard = dataclasses.replace(outputs, yamnet_scores=yamnet, mn04_scores=mn04)
    keep = np.ones(n, dtype=bool)
    target = distill.aux_targets(heard, keep, "vocabulary")
    assert target.shape == (n, 2)
    assert np.allclose(target.mean(axis=0), 0.0, atol=1e-5)
    assert np.allclose(target.std(axis=0), 1.0, atol=1e-4)
    # the first column is YAMNet's class 3: higher exactly where it was heard
    assert (target[: n // 2, 0] > 0).all() and (target[n // 2 :, 0] < 0).all()
    embeddings = distill.aux_targets(outputs, keep, "embeddings")
    assert embeddings.shape[0] == n and np.isfinite(embeddings).all()
    with pytest.raises(ValueError, match="unknown aux target"):
        distill.aux_targets(outputs, keep, "everything")


def test_vocabulary_builds_train_and_are_recorded(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cache, models = tiny
    config = distill.DistillConfig(
        (cache,), models, tmp_path / "v", steps=4, epochs=2, batch_size=8, aux_target="vocabulary"
    )
    distill.distill(config, log=False)
    recipe = json.loads((tmp_path / "v" / distill.RECIPE_FILE).read_text(encoding="utf-8"))
    assert recipe["aux_target"] == "vocabulary" and all(np.isfinite(recipe["losses"]))
