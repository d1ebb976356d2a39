"""A speech set from another source for `ouie eval privacy`: Asterisk's voice prompts.

    apt-get install asterisk-core-sounds-{en,es,fr,it,ru}-wav
    python scripts/asterisk_speech_set.py OUT [--per-language 30] [--background-from DIR]
    ouie eval privacy --data OUT --no-espeak --backend cascade --json privacy.json

The dev set's real speech is English and FLEURS fr/de/es/pt, and the speech guard's weak-
candidate wait was set after looking at one of its clips (docs/privacy.md), so it no longer
measures the guard untouched. Debian's asterisk-core-sounds packages hold studio recordings
of telephone prompts (8 kHz) by four professional voices in five languages, two of which
(Italian, Russian) the dev set has none of: Allison Smith (en, es), June Wallack (fr), Carlo
(it), IvrvoiceRU (ru); CC-BY-SA-3.0. This writes OUT/labels.csv in the dataset's columns with
the longest ``--per-language`` prompts of each language labelled ``speech`` (symlinks, no
audio copied), plus the ``background`` clips of ``--background-from`` (default
``../shared/data/dev``) for the speech-in-noise mixtures. Left out: the packages' ``silence/``
files and ``tt-monkeys`` (recorded monkeys, not speech). Never committed; docs/privacy.md
gives the figures.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import soundfile as sf

SOUNDS = Path("/usr/share/asterisk/sounds")
LANGUAGES = ("en", "es", "fr", "it", "ru")
COLUMNS = (
    "file",
    "label",
    "source_label",
    "source_repo",
    "source_commit",
    "source_path",
    "licence",
    "onset_s",
    "offset_s",
    "sr",
    "duration_s",
)


def is_speech(relative: Path) -> bool:
    return relative.parts[0] != "silence" and "monkeys" not in relative.name


def prompts(language: str, count: int) -> list[tuple[float, Path, int]]:
    """The ``count`` longest speech prompts of one language: (seconds, path, rate)."""
    found = []
    for path in (SOUNDS / language).rglob("*.wav"):
        if not is_speech(path.relative_to(SOUNDS / language)):
            continue
        info = sf.info(path)
        found.append((float(info.duration), path, int(info.samplerate)))
    return sorted(found, key=lambda item: (-item[0], str(item[1])))[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-language", type=int, default=30)
    parser.add_argument("--background-from", type=Path, default=Path("../shared/data/dev"))
    args = parser.parse_args()
    rows: list[dict[str, str]] = []
    for language in LANGUAGES:
        if not (SOUNDS / language).is_dir():
            raise SystemExit(
                f"{SOUNDS / language} missing: apt-get install asterisk-core-sounds-{language}-wav"
            )
        for seconds, path, rate in prompts(language, args.per_language):
            link = args.out / "speech" / f"{language}-{path.stem}.wav"
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                os.symlink(path.resolve(), link)
            rows.append(
                {
                    "file": str(link.relative_to(args.out)),
                    "label": "speech",
                    "source_label": f"speech_{language}",
                    "source_repo": f"debian/asterisk-core-sounds-{language}",
                    "source_commit": "",
                    "source_path": str(path.relative_to(SOUNDS)),
                    "licence": "CC-BY-SA-3.0",
                    "onset_s": "",
                    "offset_s": "",
                    "sr": str(rate),
                    "duration_s": f"{seconds:.3f}",
                }
            )
    with (args.background_from / "labels.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["label"] != "background":
                continue
            link = args.out / "background" / row["file"]
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                os.symlink((args.background_from / row["file"]).resolve(), link)
            rows.append(
                {**{k: row.get(k, "") for k in COLUMNS}, "file": str(link.relative_to(args.out))}
            )
    with (args.out / "labels.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    speech = sum(row["label"] == "speech" for row in rows)
    print(f"{args.out / 'labels.csv'}: {speech} speech prompts, {len(rows) - speech} backgrounds")


if __name__ == "__main__":
    main()
