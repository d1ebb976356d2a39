"""The game-audio training set: DMX lumps, pk3 members and plain files, four renderings."""

from __future__ import annotations

import csv
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ouie.train import game_audio
from ouie.train.game_audio import FREEDOOM, HEDGEWARS, OPENARENA, Effect
from ouie.train.teacher_head import UNLABELLED


def _dmx(samples: np.ndarray, rate: int = 11025) -> bytes:
    pcm = np.clip(samples * 128 + 128, 0, 255).astype(np.uint8).tobytes()
    return struct.pack("<HHI", 3, rate, len(pcm) + 32) + bytes(16) + pcm + bytes(16)


def _wad(path: Path, lumps: dict[str, bytes]) -> None:
    body = b"".join(lumps.values())
    directory = 12 + len(body)
    entries, position = b"", 12
    for name, data in lumps.items():
        entries += struct.pack("<II8s", position, len(data), name.encode())
        position += len(data)
    path.write_bytes(struct.pack("<4sII", b"IWAD", len(lumps), directory) + body + entries)


@pytest.fixture
def games(tmp_path: Path) -> Path:
    root = tmp_path / "games"
    t = np.arange(4000) / 11025
    (root / FREEDOOM.path).mkdir(parents=True)
    _wad(root / FREEDOOM.path / "freedoom2.wad", {"DSPISTOL": _dmx(0.8 * np.sin(2e3 * t))})
    pk3 = root / OPENARENA.path
    pk3.parent.mkdir(parents=True)
    wav = tmp_path / "shot.wav"
    sf.write(wav, 0.5 * np.sin(2 * np.pi * 300 * np.arange(8000) / 22050), 22050)
    with zipfile.ZipFile(pk3, "w") as archive:
        archive.write(wav, "sound/weapons/shotgun/sshotf1b.wav")
    (root / HEDGEWARS.path).mkdir(parents=True)
    sf.write(
        root / HEDGEWARS.path / "explosion.ogg",
        np.random.default_rng(0).normal(0, 0.1, 44100),
        44100,
    )
    return root


def test_reads_each_container_and_writes_four_renderings(games: Path, tmp_path: Path) -> None:
    effects = (
        Effect(FREEDOOM, "freedoom2.wad:DSPISTOL", "gunshot"),
        Effect(OPENARENA, "sound/weapons/shotgun/sshotf1b.wav", "gunshot"),
        Effect(HEDGEWARS, "explosion.ogg", "explosion"),
    )
    out = game_audio.write_dataset(tmp_path / "out", games, effects)
    with (out / "labels.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * len(game_audio.RENDERINGS)
    assert {r["source_repo"] for r in rows} == {
        "debian:freedoom",
        "debian:openarena-data",
        "debian:hedgewars-data",
    }
    near = {r["file"]: r for r in rows if "(near)" in r["source_label"]}
    for file in near:
        audio, rate = sf.read(out / file)
        assert rate == game_audio.SAMPLE_RATE
        assert np.max(np.abs(audio)) > 0.99  # clipped at full scale, as the twin's near shots
    band = next(r for r in rows if "(band4k)" in r["source_label"] and "explosion" in r["file"])
    audio, _ = sf.read(out / band["file"])
    spectrum = np.abs(np.fft.rfft(audio))
    freqs = np.fft.rfftfreq(len(audio), 1 / game_audio.SAMPLE_RATE)
    assert spectrum[freqs > 4500].sum() < 0.01 * spectrum.sum()


def test_missing_packages_are_named_and_none_installed_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FileNotFoundError, match="none of the game-data packages"):
        game_audio.write_dataset(tmp_path / "out", tmp_path / "nothing")
    assert "apt-get install freedoom" in capsys.readouterr().err


def test_an_unknown_pool_package_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        game_audio.main(
            [
                "--out",
                str(tmp_path / "out"),
                "--pool",
                str(tmp_path / "pool"),
                "--pool-packages",
                "nexuiz-data,nexiuz-data",
            ]
        )
    assert exit_info.value.code == 2
    assert "not a pool package: nexiuz-data" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_lump_that_is_not_a_sound_is_refused(tmp_path: Path) -> None:
    (tmp_path / FREEDOOM.path).mkdir()
    lump = struct.pack("<HHI", 0, 11025, 40) + bytes(40)
    _wad(tmp_path / FREEDOOM.path / "x.wad", {"DSPISTOL": lump})
    with pytest.raises(ValueError, match="not a DMX sound"):
        game_audio.read_effect(Effect(FREEDOOM, "x.wad:DSPISTOL", "gunshot"), tmp_path)


def test_the_pool_takes_every_other_sound_unlabelled_and_caps_each_package(
    games: Path, tmp_path: Path
) -> None:
    t = np.arange(6000) / 11025
    wad = games / FREEDOOM.path / "freedoom2.wad"
    _wad(
        wad,
        {
            "DSPISTOL": _dmx(0.8 * np.sin(2e3 * t)),  # labelled: stays out of the pool
            "DSOOF": _dmx(0.5 * np.sin(9e2 * t)),
            "DSNOWAY": _dmx(0.5 * np.sin(5e2 * t)),
            "MAP01": b"not a sound",
        },
    )
    for i in range(3):
        sf.write(games / HEDGEWARS.path / f"voice{i}.ogg", 0.2 * np.ones(22050) * (i + 1), 44100)
    sf.write(games / HEDGEWARS.path / "silent.ogg", np.zeros(22050), 44100)
    out = game_audio.write_pool(tmp_path / "pool", games, per_package=2)
    with (out / "labels.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["label"] for r in rows} == {UNLABELLED}
    by_package: dict[str, list[str]] = {}
    for row in rows:
        by_package.setdefault(row["source_repo"], []).append(row["source_path"])
    assert sorted(by_package["debian:freedoom"]) == [
        "doom/freedoom2.wad:DSNOWAY",
        "doom/freedoom2.wad:DSOOF",
    ]
    assert len(by_package["debian:hedgewars-data"]) == 2  # capped; the silent file never counts
    assert not any("explosion" in p or "silent" in p for p in by_package["debian:hedgewars-data"])
    assert "debian:openarena-data" not in by_package  # its one sound is a labelled effect
    for row in rows:
        audio, rate = sf.read(out / row["file"])
        assert rate == game_audio.SAMPLE_RATE
        assert len(audio) <= (game_audio.POOL_MAX_S + 1) * rate
    # a pool of chosen packages only (the voices pool: --pool-packages)
    only = game_audio.write_pool(
        tmp_path / "only", games, per_package=5, packages=frozenset({HEDGEWARS.name})
    )
    with (only / "labels.csv").open(encoding="utf-8") as handle:
        assert {r["source_repo"] for r in csv.DictReader(handle)} == {"debian:hedgewars-data"}
    assert HEDGEWARS.name in game_audio.DEFAULT_POOL_PACKAGES
    assert not game_audio.VOICE_POOL_PACKAGES & game_audio.DEFAULT_POOL_PACKAGES
    assert {s.package.name for s in game_audio.POOL_SOURCES} >= game_audio.VOICE_POOL_PACKAGES
