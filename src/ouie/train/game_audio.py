"""Training positives and hard negatives from Debian's free game-data packages.

``../shared/data/extra/README.md`` names packages whose sound effects are real or designed
gunshots, explosions and car crashes under free licences: the only crash and skid audio we
have (torcs), and guns and blasts recorded and edited differently from every dev source.
They are used **only as training data** for the distilled model, never to measure it:
designed effects say little about a street.

``python -m ouie.train.game_audio --out DIR`` reads the installed packages
(``apt-get install freedoom openarena-data torcs-data hedgewars-data``), writes each listed
effect as 16 kHz FLAC in four renderings, and a ``labels.csv`` in the dataset layout of
``ouie.eval.dataset`` with the package, path in the package and licence of every row, so the
data card can list them. Renderings (one source file, one ``source_repo``):

* ``plain``: the effect as shipped;
* ``near``: +15 dB and hard-clipped at full scale, as a shot 10-40 m from a lamp-post
  microphone reaches it (the twin's near shots, scored as glass before);
* ``far``: a 2nd-order low-pass at 2.5 kHz and -20 dB, as air and distance filter it;
* ``band4k``: through an 8 kHz sample rate (nothing above 4 kHz), applied to every class so
  that a missing top band is never a cue for one label (the Belize gunshots are 8 kHz).

A package that is not installed is skipped with a line saying so; nothing is downloaded, and
nothing extracted here is committed.

``--pool DIR`` also writes every *other* sound of the installed packages (and of a few more
free ones: ``bzflag-data``, ``chromium-bsu-data``, ``supertux-data``, ``warmux-data``,
``trigger-rally-data``, ``warzone2100-data``), at most ``--pool-per-package`` each, cropped to
6 s, in one rendering drawn per file, labelled ``unlabelled``
(``ouie.train.teacher_head.UNLABELLED``). Nobody labelled them: the distilled model learns
them only through the teachers' soft targets, which teaches it what the teachers make of
thousands of impacts, engines, voices, music and machines that no dev source holds, and
they are never hard negatives or mixing backgrounds.
"""

from __future__ import annotations

import argparse
import csv
import io
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, resample_poly, sosfilt

from ouie.core.labels import EventLabel
from ouie.train.teacher_head import UNLABELLED

SAMPLE_RATE = 16000
GAMES = Path("/usr/share/games")
FloatArray = npt.NDArray[np.float32]

GUN = EventLabel.GUNSHOT.value
BLAST = EventLabel.EXPLOSION.value
CRASH = EventLabel.VEHICLE_CRASH.value
OTHER = "other"  # hard negatives: doors, hammers, engines, reloads, footsteps


@dataclass(frozen=True)
class Package:
    name: str  # Debian package, also the ``source_repo`` (as ``debian:<name>``)
    licence: str
    path: str  # where its sounds are, under /usr/share/games


FREEDOOM = Package("freedoom", "BSD-3-Clause (Freedoom)", "doom")
OPENARENA = Package("openarena-data", "GPL-2+", "openarena/baseoa/pak0.pk3")
TORCS = Package("torcs-data", "GPL-2+ / Free Art License (torcs-data)", "torcs/data/sound")
HEDGEWARS = Package("hedgewars-data", "GFDL-1.2+ (hedgewars-data)", "hedgewars/Data/Sounds")


@dataclass(frozen=True)
class Effect:
    package: Package
    member: str  # WAD lump (``freedoom2.wad:DSPISTOL``), pk3 member or file name
    label: str


def _effects() -> list[Effect]:
    out = [
        Effect(FREEDOOM, f"freedoom2.wad:{lump}", label)
        for lump, label in [
            ("DSPISTOL", GUN),
            ("DSSHOTGN", GUN),
            ("DSDSHTGN", GUN),
            ("DSBAREXP", BLAST),
            ("DSRXPLOD", BLAST),
            ("DSDOROPN", OTHER),
            ("DSDORCLS", OTHER),
            ("DSBDOPN", OTHER),
            ("DSBDCLS", OTHER),
            ("DSPUNCH", OTHER),
            ("DSSTNMOV", OTHER),
            ("DSSWTCHN", OTHER),
            ("DSPSTART", OTHER),
            ("DSSGCOCK", OTHER),
        ]
    ]
    weapons = "sound/weapons/"
    out += [
        Effect(OPENARENA, weapons + member, label)
        for member, label in [
            ("machinegun/machgf1b.wav", GUN),
            ("machinegun/machgf2b.wav", GUN),
            ("machinegun/machgf3b.wav", GUN),
            ("machinegun/machgf4b.wav", GUN),
            ("shotgun/sshotf1b.wav", GUN),
            ("rocket/rocklx1a.wav", BLAST),
            ("proxmine/wstbexpl.wav", BLAST),
            ("machinegun/ric1.wav", OTHER),
            ("change.wav", OTHER),
            ("noammo.wav", OTHER),
        ]
    ]
    out += [
        Effect(TORCS, member, label)
        for member, label in [
            *((f"crash{i}.wav", CRASH) for i in range(1, 7)),
            ("skid.wav", CRASH),
            ("skid_tyres.wav", CRASH),
            ("skid_metal.wav", CRASH),
            ("backfire.wav", OTHER),  # a car backfire is the classic gunshot false alarm
            ("engine-1.wav", OTHER),
            ("944.wav", OTHER),
            ("gear_change1.wav", OTHER),
            ("axle.wav", OTHER),
            ("road-ride.wav", OTHER),
        ]
    ]
    out += [
        Effect(HEDGEWARS, member, label)
        for member, label in [
            ("shotgunfire.ogg", GUN),
            ("explosion.ogg", BLAST),
            ("grenadeimpact.ogg", BLAST),
            ("mineimpact.ogg", BLAST),
            ("hammer.ogg", OTHER),
            ("baseballbat.ogg", OTHER),
            ("steps.ogg", OTHER),
            ("bump.ogg", OTHER),
            ("pickhammer.ogg", OTHER),
            ("shotgunreload.ogg", OTHER),
            ("sniperreload.ogg", OTHER),
        ]
    ]
    return out


EFFECTS: tuple[Effect, ...] = tuple(_effects())


def _wad_lump(wad: Path, lump: str) -> tuple[FloatArray, int]:
    """A DMX sound lump: u16 format (3), u16 rate, u32 length, 16 pad bytes, u8 PCM."""
    data = wad.read_bytes()
    count, directory = struct.unpack_from("<4xII", data)
    for i in range(count):
        position, size, raw_name = struct.unpack_from("<II8s", data, directory + 16 * i)
        if raw_name.rstrip(b"\0").decode("ascii") != lump:
            continue
        fmt, rate, length = struct.unpack_from("<HHI", data, position)
        if fmt != 3 or not 32 <= length <= size - 8:
            raise ValueError(f"{wad}:{lump} is not a DMX sound (format {fmt}, {length} bytes)")
        pcm = np.frombuffer(data, np.uint8, count=length - 32, offset=position + 8 + 16)
        return ((pcm.astype(np.float32) - 128.0) / 128.0), int(rate)
    raise KeyError(f"{wad} has no lump {lump}")


def read_effect(effect: Effect, games: Path = GAMES) -> tuple[FloatArray, int]:
    """The effect's samples (mono float32) and rate."""
    root = games / effect.package.path
    if effect.package is FREEDOOM:
        wad, lump = effect.member.split(":")
        return _wad_lump(root / wad, lump)
    if effect.package is OPENARENA:
        return _zip_member(root, effect.member)
    return _sf_file(root / effect.member)


def _to_rate(audio: FloatArray, rate: int, target: int) -> FloatArray:
    if rate == target:
        return audio
    g = np.gcd(rate, target)
    out: FloatArray = resample_poly(audio, target // g, rate // g).astype(np.float32)
    return out


def _normalise(audio: FloatArray) -> FloatArray:
    peak = float(np.max(np.abs(audio))) or 1.0
    return (audio * (0.5 / peak)).astype(np.float32)  # -6 dBFS peak before rendering


def _near(audio: FloatArray) -> FloatArray:
    out: FloatArray = np.clip(audio * 10 ** (15 / 20), -1.0, 1.0).astype(np.float32)
    return out


def _far(audio: FloatArray) -> FloatArray:
    sos = butter(2, 2500.0, btype="lowpass", fs=SAMPLE_RATE, output="sos")
    out: FloatArray = (sosfilt(sos, audio) * 10 ** (-20 / 20)).astype(np.float32)
    return out


def _band4k(audio: FloatArray) -> FloatArray:
    return _to_rate(_to_rate(audio, SAMPLE_RATE, 8000), 8000, SAMPLE_RATE)


RENDERINGS: dict[str, Callable[[FloatArray], FloatArray]] = {
    "plain": lambda audio: audio,
    "near": _near,
    "far": _far,
    "band4k": _band4k,
}


def _pad(audio: FloatArray) -> FloatArray:
    """At least one node window (0.975 s) with 0.25 s of silence before the onset."""
    lead = np.zeros(SAMPLE_RATE // 4, dtype=np.float32)
    tail = np.zeros(max(0, SAMPLE_RATE - len(audio)), dtype=np.float32)
    return np.concatenate([lead, audio, tail])


def write_dataset(
    out_dir: Path, games: Path = GAMES, effects: tuple[Effect, ...] = EFFECTS
) -> Path:
    """Every installed effect in every rendering, as FLAC plus ``labels.csv``."""
    import soundfile as sf

    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    missing: set[str] = set()
    for effect in effects:
        if not (games / effect.package.path).exists():
            missing.add(effect.package.name)
            continue
        audio, rate = read_effect(effect, games)
        base = _pad(_normalise(_to_rate(audio, rate, SAMPLE_RATE)))
        stem = effect.member.replace(":", "_").replace("/", "_").rsplit(".", 1)[0]
        for rendering, render in RENDERINGS.items():
            file = f"{effect.package.name}/{rendering}/{stem}.flac"
            (out_dir / file).parent.mkdir(parents=True, exist_ok=True)
            clip = render(base)
            sf.write(str(out_dir / file), clip, SAMPLE_RATE, subtype="PCM_16")
            rows.append(
                {
                    "file": file,
                    "label": effect.label,
                    "source_label": f"{effect.member} ({rendering})",
                    "source_repo": f"debian:{effect.package.name}",
                    "source_path": f"{effect.package.path}/{effect.member}",
                    "licence": effect.package.licence,
                    "duration_s": f"{len(clip) / SAMPLE_RATE:.3f}",
                }
            )
    for name in sorted(missing):
        print(f"{name} is not installed: skipped (apt-get install {name})", file=sys.stderr)
    return _write_labels(out_dir, rows)


def _write_labels(out_dir: Path, rows: list[dict[str, str]]) -> Path:
    """``labels.csv`` in the dataset layout; no row at all means no package was installed."""
    if not rows:
        raise FileNotFoundError("none of the game-data packages is installed")
    with (out_dir / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out_dir


POOL_EXTENSIONS = (".wav", ".ogg", ".flac")
POOL_MAX_S = 6.0
POOL_MIN_S = 0.08


@dataclass(frozen=True)
class PoolSource:
    """Where a package keeps its sounds: a folder, or zip archives (pk3, wz) inside one."""

    package: Package
    archives: tuple[str, ...] = ()  # zip files under package.path; empty: a plain folder


POOL_SOURCES: tuple[PoolSource, ...] = (
    PoolSource(FREEDOOM),
    PoolSource(OPENARENA),
    PoolSource(TORCS),
    PoolSource(HEDGEWARS),
    PoolSource(Package("bzflag-data", "LGPL-2.1 or MPL (bzflag-data)", "bzflag")),
    PoolSource(
        Package("chromium-bsu-data", "Clarified-Artistic (chromium-bsu-data)", "chromium-bsu")
    ),
    PoolSource(Package("supertux-data", "GPL-3+ / CC-BY-SA / CC0 (supertux-data)", "supertux2")),
    PoolSource(Package("warmux-data", "GPL-2+ (warmux-data)", "warmux")),
    PoolSource(
        Package("trigger-rally-data", "GPL-2+ (trigger-rally-data)", "trigger-rally"),
        ("data.zip",),
    ),
    PoolSource(
        Package("warzone2100-data", "GPL-2+ / CC0 (warzone2100-data)", "warzone2100"),
        ("base.wz", "mp.wz"),
    ),
    # Three more with many voices (pain and death cries: what the teachers call screams,
    # which the dev sources hold in two collections only), guns and blasts: a second pool,
    # ``--pool-packages`` (VOICE_POOL_PACKAGES).
    PoolSource(Package("nexuiz-data", "GPL-2+ (nexuiz-data)", "nexuiz/data"), ("data.pk3",)),
    PoolSource(Package("redeclipse-data", "CC-BY-SA-3.0+ (redeclipse-data)", "redeclipse/data")),
    PoolSource(Package("megaglest-data", "CC-BY-SA-3.0 (megaglest-data)", "megaglest")),
)
VOICE_POOL_PACKAGES = frozenset({"nexuiz-data", "redeclipse-data", "megaglest-data"})
#: ``--pool`` without ``--pool-packages``: the ten packages of the first pool.
DEFAULT_POOL_PACKAGES = frozenset(
    source.package.name for source in POOL_SOURCES if source.package.name not in VOICE_POOL_PACKAGES
)


@dataclass(frozen=True)
class PoolSound:
    package: Package
    member: str  # as Effect.member: WAD lump, archive member (``archive:member``) or file
    reader: Callable[[], tuple[FloatArray, int]]


def _sf_bytes(data: bytes) -> tuple[FloatArray, int]:
    import soundfile as sf

    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    return np.ascontiguousarray(mono, dtype=np.float32), int(rate)


def _zip_member(archive: Path, name: str) -> tuple[FloatArray, int]:
    with zipfile.ZipFile(archive) as opened:
        return _sf_bytes(opened.read(name))


def _sf_file(path: Path) -> tuple[FloatArray, int]:
    return _sf_bytes(path.read_bytes())


def _wad_sound_lumps(wad: Path) -> list[str]:
    data = wad.read_bytes()
    count, directory = struct.unpack_from("<4xII", data)
    names = []
    for i in range(count):
        _, _, raw_name = struct.unpack_from("<II8s", data, directory + 16 * i)
        name = raw_name.rstrip(b"\0").decode("ascii", errors="replace")
        if name.startswith("DS"):
            names.append(name)
    return names


def pool_sounds(source: PoolSource, games: Path = GAMES) -> list[PoolSound]:
    """Every sound of one package, in a stable order (labelled effects excluded)."""
    package, root = source.package, games / source.package.path
    labelled = {e.member for e in EFFECTS if e.package == package}
    found: list[PoolSound] = []
    if package == FREEDOOM:
        for wad in sorted(root.glob("*.wad"))[:1]:  # freedoom1 and 2 share their sounds
            for lump in _wad_sound_lumps(wad):
                member = f"{wad.name}:{lump}"
                if member not in labelled:
                    found.append(PoolSound(package, member, partial(_wad_lump, wad, lump)))
        return found
    archives = [root] if package == OPENARENA else [root / a for a in source.archives]
    if archives:
        for archive in archives:
            if not archive.is_file():
                continue
            with zipfile.ZipFile(archive) as opened:
                names = sorted(n for n in opened.namelist() if n.lower().endswith(POOL_EXTENSIONS))
            for name in names:
                if name in labelled:
                    continue
                member = name if package == OPENARENA else f"{archive.name}:{name}"
                found.append(PoolSound(package, member, partial(_zip_member, archive, name)))
        return found
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in POOL_EXTENSIONS and path.is_file():
            member = str(path.relative_to(root))
            if member not in labelled:
                found.append(PoolSound(package, member, partial(_sf_file, path)))
    return found


def write_pool(
    out_dir: Path,
    games: Path = GAMES,
    per_package: int = 300,
    seed: int = 5,
    packages: frozenset[str] | None = None,
) -> Path:
    """Up to ``per_package`` unlabelled sounds of each installed package (of ``packages``
    only, when given), as ``labels.csv``."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    names = list(RENDERINGS)
    for source in POOL_SOURCES:
        if packages is not None and source.package.name not in packages:
            continue
        if not (games / source.package.path).exists():
            print(f"{source.package.name} is not installed: skipped", file=sys.stderr)
            continue
        sounds = pool_sounds(source, games)
        order = rng.permutation(len(sounds))
        kept = 0
        for index in order:
            if kept >= per_package:
                break
            sound = sounds[int(index)]
            try:
                audio, rate = sound.reader()
            except (RuntimeError, ValueError, KeyError, OSError) as error:
                print(f"skipped {sound.member}: {error}", file=sys.stderr)
                continue
            audio = _to_rate(audio, rate, SAMPLE_RATE)[: int(POOL_MAX_S * SAMPLE_RATE)]
            if len(audio) < POOL_MIN_S * SAMPLE_RATE or float(np.max(np.abs(audio))) < 1e-3:
                continue
            rendering = names[int(rng.integers(len(names)))]
            clip = RENDERINGS[rendering](_pad(_normalise(audio)))
            stem = sound.member.replace(":", "_").replace("/", "_").rsplit(".", 1)[0]
            file = f"{source.package.name}/{stem}.flac"
            (out_dir / file).parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(out_dir / file), clip, SAMPLE_RATE, subtype="PCM_16")
            rows.append(
                {
                    "file": file,
                    "label": UNLABELLED,
                    "source_label": f"{sound.member} ({rendering})",
                    "source_repo": f"debian:{source.package.name}",
                    "source_path": f"{source.package.path}/{sound.member}",
                    "licence": source.package.licence,
                    "duration_s": f"{len(clip) / SAMPLE_RATE:.3f}",
                }
            )
            kept += 1
    return _write_labels(out_dir, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ouie.train.game_audio", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="outside the repository")
    parser.add_argument("--games", type=Path, default=GAMES, help="where the packages put sounds")
    parser.add_argument("--pool", type=Path, default=None, help="also write unlabelled sounds")
    parser.add_argument("--pool-per-package", type=int, default=300)
    parser.add_argument(
        "--pool-packages",
        default=None,
        help="comma-separated: only these packages' sounds (default: the ten of the first "
        "pool, DEFAULT_POOL_PACKAGES)",
    )
    args = parser.parse_args(argv)
    only = frozenset(args.pool_packages.split(",")) if args.pool_packages else DEFAULT_POOL_PACKAGES
    # a misspelt name would otherwise write a pool without that package and say nothing
    unknown = sorted(only - {source.package.name for source in POOL_SOURCES})
    if unknown:
        parser.error(f"--pool-packages: not a pool package: {', '.join(unknown)}")
    outs = [write_dataset(args.out, args.games)]
    if args.pool is not None:
        outs.append(write_pool(args.pool, args.games, args.pool_per_package, packages=only))
    for out in outs:
        with (out / "labels.csv").open(encoding="utf-8") as handle:
            count = sum(1 for _ in handle) - 1
        print(f"{out}: {count} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
