"""Impulsive clips are played up to their first bang: the truth of an event is one round."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ouie.eval.extent import energetic_segments
from ouie.sim.render import normalise_loudest
from ouie.sim.scenario import ScenarioSpec, SourceLibrary, build
from ouie.sim.sources import combine, describe, sources_line

RATE = 16000


def bang(at_s: float, seconds: float = 2.0, level: float = 0.5) -> npt.NDArray[np.float32]:
    """Faint room noise with one decaying noise burst (a shot and its ringing) at ``at_s``."""
    rng = np.random.default_rng(round(at_s * 1000))
    audio = rng.standard_normal(round(seconds * RATE)) * 1e-3
    n = round(0.15 * RATE)
    start = round(at_s * RATE)
    audio[start : start + n] += (
        rng.standard_normal(n) * level * np.exp(-np.arange(n) / (0.03 * RATE))
    )
    return audio.astype(np.float32)


def write(path: Path, audio: npt.NDArray[np.float32]) -> Path:
    import soundfile as sf

    sf.write(path, audio, RATE, subtype="FLOAT")
    return path


def load(path: Path, label: str) -> tuple[npt.NDArray[np.float64], float | None, str]:
    library = SourceLibrary(RATE, None)
    source = library.resolve(f"file:{path}", label, np.random.default_rng(0))
    return source.signal, source.trimmed_at_s, source.description


def test_two_bangs_are_trimmed_to_the_first(tmp_path: Path) -> None:
    # a shot at 0.3 s and its repeat 0.8 s later
    two = bang(0.3) + bang(1.1) - bang(0.3, level=0.0)
    signal, cut_s, description = load(write(tmp_path / "two.wav", two), "gunshot")
    assert cut_s is not None and 1.05 <= cut_s < 1.1  # shortly before the second bang
    assert signal.size == round(cut_s * RATE)
    assert description.endswith(f"(trimmed to first bang at {cut_s:.2f} s)")
    # the second bang is gone: one sounding run, and the end is at the room's noise floor
    assert len(energetic_segments(signal.astype(np.float32), RATE, merge_gap_s=0.3)) == 1
    first = np.mean(np.square(signal[round(0.3 * RATE) : round(0.35 * RATE)]))
    assert np.mean(np.square(signal[-round(0.1 * RATE) :])) < 1e-4 * first
    assert abs(signal[-1]) < 1e-6  # faded out, no click
    # the first bang and its natural tail are kept as they were (up to the level scaling)
    kept = round((cut_s - 0.01) * RATE)
    original = two[:kept].astype(np.float64)
    scale = float(np.dot(signal[:kept], original) / np.dot(original, original))
    assert np.allclose(signal[:kept], scale * original, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("label", ["gunshot", "explosion", "glass_breaking", "vehicle_crash"])
def test_one_bang_is_unchanged(tmp_path: Path, label: str) -> None:
    one = bang(0.3)
    signal, cut_s, description = load(write(tmp_path / "one.wav", one), label)
    assert cut_s is None and "trimmed" not in description
    assert np.array_equal(signal, normalise_loudest(one, RATE))


def test_sustained_sounds_with_gaps_are_never_trimmed(tmp_path: Path) -> None:
    # a siren-like tone, on 0.5 s and off 0.5 s: distinct runs, but not bangs
    t = np.arange(3 * RATE) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 900.0 * t) * (np.floor(t / 0.5) % 2 == 0)).astype(np.float32)
    tone += (np.random.default_rng(3).standard_normal(t.size) * 1e-3).astype(np.float32)
    path = write(tmp_path / "wail.wav", tone)
    for label in ("siren", "car_alarm", "scream", "spray_can"):
        signal, cut_s, _ = load(path, label)
        assert cut_s is None and signal.size == tone.size
    # the same clip as a gunshot is cut: the label, not the waveform, keeps it whole
    _, cut_s, _ = load(path, "gunshot")
    assert cut_s is not None and cut_s < 1.0


def test_sources_summary_counts_trimmed_clips(tmp_path: Path) -> None:
    two = write(tmp_path / "two.wav", bang(0.3) + bang(1.1) - bang(0.3, level=0.0))
    one = write(tmp_path / "one.wav", bang(0.3))
    event = {
        "label": "gunshot",
        "position": {"street": "Rue Saint-Jean", "along_m": 40.0, "side_m": 5.0},
    }
    spec = ScenarioSpec.model_validate(
        {
            "name": "trim",
            "duration_s": 4.0,
            "ambience": {"scene": "street", "level_db_spl": 50.0, "source": "generated"},
            "events": [
                {**event, "at_s": 0.5, "source": f"file:{two}"},
                {**event, "at_s": 1.5, "source": f"file:{one}"},
            ],
        }
    )
    built = build(spec)
    assert [t.trimmed_at_s is not None for t in built.truth] == [True, False]
    assert "trimmed to first bang" in built.truth[0].source
    sources = describe(built)
    assert sources["real_clips"] == 2 and sources["trimmed"] == 1
    assert "1 trimmed to their first bang" in sources_line(sources)
    assert combine([sources, sources])["trimmed"] == 2
    # scorecards written before the count existed still combine
    assert combine([{k: v for k, v in sources.items() if k != "trimmed"}])["trimmed"] == 0
