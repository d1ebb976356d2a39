from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from ouie.eval.audio import clip_duration
from ouie.eval.backgrounds import constructed_background, rms, traffic_noise
from ouie.eval.dataset import Clip, load_dataset
from ouie.eval.extent import frame_levels_db
from ouie.eval.mixtures import MixtureSet, MixtureSpec, background_sources
from tests.eval.fakes import write_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Clip], dict[str, float]]:
    root = write_dataset(tmp_path_factory.mktemp("mixdata"))
    clips = load_dataset(root)
    return clips, {c.file: clip_duration(c.path) for c in clips}


def _digest(mixture_set: MixtureSet) -> list[tuple[str, str, tuple]]:
    return [
        (m.mixture_id, hashlib.sha256(m.audio.tobytes()).hexdigest(), m.events) for m in mixture_set
    ]


def test_same_seed_same_mixtures_other_seed_others(dataset) -> None:
    clips, durations = dataset
    first = _digest(MixtureSet(clips, durations, MixtureSpec(seed=5)))
    again = _digest(MixtureSet(clips, durations, MixtureSpec(seed=5)))
    other = _digest(MixtureSet(clips, durations, MixtureSpec(seed=6)))
    assert first == again
    assert [d[1] for d in first] != [d[1] for d in other]
    # one mixture per target clip, each rendered the same whatever the order
    mixtures = MixtureSet(clips, durations, MixtureSpec(seed=5))
    last = mixtures.render(mixtures.plans[-1])
    assert last is not None
    assert hashlib.sha256(last.audio.tobytes()).hexdigest() == first[-1][1]


def test_mixture_layout_ebr_and_truth(dataset) -> None:
    clips, durations = dataset
    spec = MixtureSpec(seed=11)
    mixtures = list(MixtureSet(clips, durations, spec))
    assert len(mixtures) == sum(c.is_target for c in clips) == 7
    ebrs = [m.ebr_db for m in mixtures]
    assert sorted(ebrs.count(e) for e in (-6.0, 0.0, 6.0)) == [2, 2, 3]  # balanced
    for m in mixtures:
        assert m.duration_s >= 30.0
        assert m.rate == spec.rate
        assert float(np.max(np.abs(m.audio))) <= 0.99 + 1e-6
        (truth,) = m.events
        assert truth.label == m.label
        assert 1.0 <= truth.onset_s < truth.offset_s <= m.duration_s - 1.0
        # the ground-truth onset is where the mixture's level rises (10 ms frames)
        levels = frame_levels_db(m.audio, m.rate, 0.01, 0.01)
        onset_frame = round(truth.onset_s / 0.01)
        before = np.median(levels[onset_frame - 12 : onset_frame - 1])
        if m.ebr_db >= 0:  # at -6 dB the total level rises by only ~1 dB
            assert levels[onset_frame : onset_frame + 3].max() > before + 2.0
            assert levels[onset_frame - 3 : onset_frame - 1].max() < before + 1.0


def test_realised_ebr_matches_the_plan(dataset) -> None:
    clips, durations = dataset
    mixtures = MixtureSet(clips, durations, MixtureSpec(seed=3))
    for plan in mixtures.plans:
        background, event, start, mask = mixtures.render_parts(plan)
        window = background[start : start + event.size]
        ebr = 20 * np.log10(rms(event[mask]) / rms(window[mask]))
        assert ebr == pytest.approx(plan.ebr_db, abs=1e-3)


def test_backgrounds_come_from_the_fold_and_never_from_speech_or_targets(dataset) -> None:
    clips, durations = dataset
    sources = background_sources(clips, durations)
    assert [c.file for c in sources.ambience] == ["ambience/street.wav"]
    assert {c.label for c in sources.pool} == {"dog_bark"}
    only_short = [c for c in clips if c.file != "ambience/street.wav"]
    built = list(MixtureSet(only_short, durations, MixtureSpec(seed=1)))
    assert {m.background_kind for m in built} == {"constructed"}
    for m in built:
        assert set(m.background_files) <= {"other/dog0.wav", "other/dog1.wav", "other/dog2.wav"}
    # a fold's mixtures use that fold's files only
    fold_clips = [c for c in clips if c.fold == clips[0].fold]
    fold_files = {c.file for c in fold_clips}
    for m in MixtureSet(fold_clips, durations, MixtureSpec(seed=2)):
        assert m.event_file in fold_files
        assert set(m.background_files) <= fold_files


def test_traffic_noise_is_low_frequency_and_seeded() -> None:
    rate = 16000
    a = traffic_noise(10 * rate, rate, np.random.default_rng(4))
    b = traffic_noise(10 * rate, rate, np.random.default_rng(4))
    assert np.array_equal(a, b)
    assert rms(a) == pytest.approx(1.0, rel=1e-3)
    spectrum = np.abs(np.fft.rfft(a)) ** 2
    freqs = np.fft.rfftfreq(a.size, 1 / rate)
    assert spectrum[freqs < 3000].sum() / spectrum.sum() > 0.85


def test_constructed_background_skips_silent_clips() -> None:
    rate = 8000
    rng = np.random.default_rng(0)
    loud = (0.1 * rng.standard_normal(rate)).astype(np.float32)
    pool = [np.zeros(rate, np.float32), loud]
    audio, used = constructed_background(5 * rate, rate, pool, np.random.default_rng(1))
    assert audio.size == 5 * rate
    assert set(used) == {1}
    assert rms(audio) == pytest.approx(1.0, rel=1e-3)
    silent_only, none_used = constructed_background(rate, rate, [pool[0]], np.random.default_rng(1))
    assert none_used == [] and rms(silent_only) == pytest.approx(1.0, rel=1e-3)


def test_dataset_paths_are_resolved_relative_to_labels_csv(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data")
    clips = load_dataset(root)
    assert all(c.path.is_file() and c.path.is_relative_to(root) for c in clips)
