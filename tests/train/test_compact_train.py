"""Training ouie-compact: the synthetic sources, the window builder, and a smoke run of the
whole training function (a few clips, one epoch) that must produce a loadable model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.train import compact_data, synth


@pytest.mark.parametrize(
    "generator",
    [
        synth.car_alarm,
        synth.spray_can,
        synth.vehicle_crash,
        synth.skid,
        synth.crash,
        synth.siren,
        synth.traffic,
        synth.steady_noise,
    ],
)
def test_synthetic_sources_are_seeded_and_sane(generator: synth.Generator) -> None:
    first = generator(np.random.default_rng(5))
    again = generator(np.random.default_rng(5))
    other = generator(np.random.default_rng(6))
    np.testing.assert_array_equal(first, again)
    assert first.dtype == np.float32
    assert np.all(np.isfinite(first))
    assert 0.5 * synth.SAMPLE_RATE <= first.size <= 6 * synth.SAMPLE_RATE
    assert 0.01 < np.abs(first).max() <= 0.5 + 1e-6
    assert first.size != other.size or not np.array_equal(first, other)


def test_every_sparse_class_has_a_generator() -> None:
    assert {
        EventLabel.CAR_ALARM,
        EventLabel.SPRAY_CAN,
        EventLabel.VEHICLE_CRASH,
    } == synth.SPARSE_LABELS
    assert set(synth.EVENT_GENERATORS) > synth.SPARSE_LABELS


def test_sim_generators_resample() -> None:
    audio = synth.SIM_GENERATORS["skid"](np.random.default_rng(1), 48000)
    reference = synth.skid(np.random.default_rng(1))
    assert audio.dtype == np.float64
    assert abs(audio.size - 3 * reference.size) <= 3


def test_cut_pads_outside_the_audio() -> None:
    audio = np.arange(1, 11, dtype=np.float32)
    np.testing.assert_array_equal(compact_data.cut(audio, -2, 5), [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(compact_data.cut(audio, 8, 4), [9, 10, 0, 0])


def test_mix_at_sets_the_event_to_background_ratio() -> None:
    rng = np.random.default_rng(0)
    background = (0.01 * rng.standard_normal(compact_data.WINDOW)).astype(np.float32)
    event = np.zeros(compact_data.WINDOW, np.float32)
    event[4000:6000] = 0.5 * rng.standard_normal(2000)
    mixed = compact_data.mix_at(background, event, 6.0)
    scaled = mixed - background
    ratio = 20 * np.log10(compact_data.active_rms(scaled) / compact_data.rms(background))
    assert ratio == pytest.approx(6.0, abs=0.01)


def test_event_windows_hold_the_event() -> None:
    audio = np.zeros(3 * compact_data.SAMPLE_RATE, np.float32)
    audio[20000:20400] = 0.8  # a click at 1.25 s
    source = compact_data.make_source("click", "gunshot", audio)
    assert source is not None
    rng = np.random.default_rng(2)
    for _ in range(20):
        window = compact_data.event_window(source, rng)
        assert np.abs(window).max() == pytest.approx(0.8)
    assert compact_data.make_source("silence", "gunshot", np.zeros(800, np.float32)) is None


def test_positive_windows_keep_the_event_start_inside() -> None:
    audio = np.zeros(3 * compact_data.SAMPLE_RATE, np.float32)
    audio[20000:20160] = 0.8  # one 10 ms frame: the only anchor
    source = compact_data.make_source("click", "gunshot", audio)
    assert source is not None
    rng = np.random.default_rng(3)
    low, high = compact_data.POSITIVE_POSITION
    for _ in range(50):
        window = compact_data.event_window(source, rng, compact_data.POSITIVE_POSITION)
        at = int(np.flatnonzero(window)[0]) / compact_data.WINDOW
        assert low - 0.02 <= at <= high + 0.02


def test_finish_keeps_levels_in_range() -> None:
    rng = np.random.default_rng(4)
    levels: list[float] = []
    for _ in range(40):
        window = (rng.uniform(0.01, 3.0) * rng.standard_normal(compact_data.WINDOW)).astype(
            np.float32
        )
        out = compact_data.finish(window, rng)
        assert np.abs(out).max() <= 0.99 + 1e-6
        levels.append(20 * np.log10(compact_data.rms(out)))
    assert all(-60.0 < level < 0.0 for level in levels)
    assert np.median(levels) < -12.0  # mostly −50…−12 dBFS; a few overdriven captures


@pytest.mark.shared
def test_smoke_training_run_gives_a_loadable_model(dev_data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="training needs the train extra")
    pytest.importorskip("onnx", reason="training needs the train extra")
    from ouie.node.classifiers.compact import DIGEST_FILE, MODEL_FILE, load
    from ouie.train.compact import TrainConfig, train

    config = TrainConfig(
        data_dir=dev_data_dir,
        out_dir=tmp_path,
        windows_per_class=6,
        negative_windows=24,
        synth_per_class=2,
        traffic_clips=2,
        epochs=1,
        batch_size=16,
        max_clips_per_label=2,
        eval_fold=None,
        command="smoke",
    )
    result = train(config, log=False)
    assert result.model_path == tmp_path / MODEL_FILE
    assert (tmp_path / DIGEST_FILE).is_file()
    assert len(result.losses) == 1 and np.isfinite(result.losses[0])
    assert 50_000 < result.params < 300_000
    card = (tmp_path / "DATA_CARD.md").read_text(encoding="utf-8")
    assert "CC BY-NC 3.0" in card and "Synthetic" in card and "`smoke`" in card

    classifier = load(tmp_path)
    scores = classifier.scores(np.zeros((3, classifier.window_samples), np.float32))
    assert scores.shape == (3, len(EVENT_LABELS))
    assert np.all((scores >= 0.0) & (scores <= 1.0))


def test_held_out_fold_cannot_be_trained_on(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="training needs the train extra")
    from ouie.train.compact import TrainConfig, train

    with pytest.raises(ValueError, match="both trained on and held out"):
        train(TrainConfig(data_dir=tmp_path, out_dir=tmp_path, train_folds=(0, 1)), log=False)


def test_sparse_labels_draw_mostly_synthetic_sources() -> None:
    def source(name: str) -> compact_data.Source:
        audio = np.ones(1600, np.float32)
        made = compact_data.make_source(name, "x", audio)
        assert made is not None
        return made

    pools = compact_data.Pools(
        events={EventLabel.CAR_ALARM: [source("real")], EventLabel.SIREN: [source("r")] * 30},
        synthetic_events={
            EventLabel.CAR_ALARM: [source("synth")] * 300,
            EventLabel.SIREN: [source("synth")] * 300,
        },
    )
    rng = np.random.default_rng(0)
    alarm = [pools.event_source(EventLabel.CAR_ALARM, rng).name for _ in range(2000)]
    siren = [pools.event_source(EventLabel.SIREN, rng).name for _ in range(2000)]
    assert 0.9 < alarm.count("synth") / 2000 < 1.0  # the single real clip is not over-used
    assert 0.45 < siren.count("synth") / 2000 < 0.55  # real sirens keep half the windows
