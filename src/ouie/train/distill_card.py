"""The data card of a distilled ouie-compact, and the list of every file it was trained on.

    python -m ouie.train.distill_card --build DIR --data DIR [--data DIR ...]
        [--figures LOSO.json ...] --out DIR

Writes ``DATA_CARD.md`` and ``TRAINING_FILES.csv`` (dataset, file, label, source_repo,
licence: one row per clip the build learned from) beside the model, so the training set can
be checked against any evaluation set, file by file and source by source. ``--data`` names
the dataset folders the teacher cache was made from (the cache is named after each folder).
``--figures`` takes ``ouie eval --split source`` results (JSON) of this recipe's
source-disjoint builds; their pooled and per-source figures go into the card as they are.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ouie.eval.source_result import SourceSplitResult
from ouie.train.distill import RECIPE_FILE, Recipe
from ouie.train.ensemble import ENSEMBLE_FILE, EnsembleRecipe

CARD_FILE = "DATA_CARD.md"
FILES_LIST = "TRAINING_FILES.csv"
RUNTIME_CONTRACT = (
    "`logmel` [batch, 96, 64] (YAMNet-style log-mel patches, 16 kHz, 0.975 s windows), output "
    "`scores` [batch, 8] in `EVENT_LABELS` order. onnxruntime only; no speech class exists in "
    "the model."
)


@dataclass(frozen=True)
class TrainingFile:
    dataset: str
    file: str
    label: str
    source_repo: str
    licence: str


def training_files(data_dirs: list[Path], excluded: set[str]) -> list[TrainingFile]:
    rows: list[TrainingFile] = []
    for directory in data_dirs:
        with (directory / "labels.csv").open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                source = row.get("source_repo", "") or ""
                if source in excluded:
                    continue
                rows.append(
                    TrainingFile(
                        directory.name,
                        row["file"],
                        row["label"],
                        source,
                        row.get("licence", "") or "unspecified",
                    )
                )
    return rows


def write_files_list(rows: list[TrainingFile], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "file", "label", "source_repo", "licence"])
        for r in rows:
            writer.writerow([r.dataset, r.file, r.label, r.source_repo, r.licence])


def _figures_section(results: list[SourceSplitResult]) -> list[str]:
    lines = [
        "## Source-disjoint figures (`ouie eval --split source`, builds of this recipe)",
        "",
        "Each source is scored by a build that never saw it (docs/eval.md); pooled over all "
        "held-out sources. The bundled model itself is trained on every source, so no figure "
        "here is of the bundled file: these measure the recipe.",
        "",
    ]
    for result in results:
        lines += [*markdown_table(result), ""]
    return lines


def markdown_table(result: SourceSplitResult) -> list[str]:
    """The console summary of ``ouie eval --split source`` as a Markdown table."""
    from ouie.eval.source_report import HEADERS, summary_rows

    def cells(values: tuple[str, ...]) -> str:
        return "| " + " | ".join(v.replace("|", "/") for v in values) + " |"

    return [
        f"`{result.backend}` ({result.mode}):",
        "",
        cells(HEADERS),
        "|" + "---|" * len(HEADERS),
        *(cells(row) for row in summary_rows(result)),
    ]


def _recipe_lines(recipe: Recipe) -> list[str]:
    return [
        f"- Network: per-band batch norm plus a per-patch band-mean-removed channel "
        f"(channel_norm={recipe.channel_norm}), a PCEN channel (pcen={recipe.pcen}), "
        f"four strided convolutions "
        f"{recipe.widths}, mean over frequency, mean and max over time, linear → 8.",
        f"- Teachers: {', '.join(recipe.teachers)}"
        " — their AudioSet scores mapped to ouie's labels, averaged, are the soft targets "
        f"(cross-entropy, plus a squared error on their logits at weight {recipe.logit_weight}); "
        + (
            "their embeddings (1024 + 512) are regressed by a training-only head."
            if recipe.aux_target == "embeddings"
            else "their logits over the AudioSet classes heard in the training windows are "
            "regressed by a training-only head."
        ),
        f"- Recipe: {recipe.steps} steps of batch {recipe.batch_size}, hard-label "
        f"weight {recipe.hard_weight}, embedding weight {recipe.aux_weight}, "
        f"mixing probability {recipe.mix_probability}, gain from {recipe.min_gain_db:g} dB, "
        f"{recipe.unlabelled_share:.0%} of each batch from unlabelled clips, "
        f"{recipe.comb_probability:.0%} given a ground or facade reflection, seed {recipe.seed}; "
        f"{recipe.windows} windows of {recipe.clips} clips; fitting "
        f"{recipe.fit_s} s on one CPU thread.",
        f"- Command: `{recipe.command}`",
    ]


def render_card(
    recipe: Recipe | EnsembleRecipe, rows: list[TrainingFile], results: list[SourceSplitResult]
) -> str:
    by_source = Counter(r.source_repo for r in rows)
    by_label = Counter(r.label for r in rows)
    by_licence = Counter(r.licence for r in rows)
    member_sections: list[str] = []
    if isinstance(recipe, EnsembleRecipe):
        members = recipe.members
        model = [
            f"- The mean of {len(members)} distilled networks' scores, in one graph "
            f"(`ouie.train.ensemble`): {', '.join(recipe.member_ids)}. Parameters "
            f"(exported): {sum(m.parameters for m in members)} in all.",
            f"- Input {RUNTIME_CONTRACT}",
            f"- Command: `{recipe.command}`",
        ]
        for member_id, member in zip(recipe.member_ids, members, strict=True):
            member_sections += [f"### Member {member_id}", "", *_recipe_lines(member), ""]
    else:
        model = [
            f"- Parameters (exported): {recipe.parameters}; input {RUNTIME_CONTRACT}",
            *_recipe_lines(recipe),
        ]
    lines = [
        "# ouie-compact — data card",
        "",
        "ouie's default classifier: a small CNN distilled from two AudioSet taggers (YAMNet, "
        "EfficientAT mn04) on every clip below. Generated by `ouie.train.distill_card` from the "
        "build's `recipe.json` (do not edit by hand; retrain instead).",
        "",
        "## Model",
        "",
        *model,
        f"- Card written {datetime.now(UTC).date().isoformat()}.",
        "",
        *member_sections,
        "## Training data",
        "",
        f"{len(rows)} clips; every one is listed in `{FILES_LIST}` (dataset, file, label, "
        "source_repo, licence). Generated sources (`ouie/train.synth`: car alarms, spray cans, "
        "crashes, sirens, traffic and steady noise) are ouie's own. Clips labelled "
        "`unlabelled` (other effects of Debian's game-data packages) are heard only through "
        "the teachers' soft targets: never a hard label, never measured on.",
        "",
        "| source_repo | clips |",
        "|---|---|",
        *(f"| {source or '(none)'} | {n} |" for source, n in sorted(by_source.items())),
        "",
        "| label | clips |",
        "|---|---|",
        *(f"| {label} | {n} |" for label, n in sorted(by_label.items())),
        "",
        "### Licences",
        "",
        "The model is derived from these recordings and inherits their terms. ESC-50 "
        "(K. J. Piczak) is **CC BY-NC 3.0**: treat the model as non-commercial unless it is "
        "retrained without the `esc50/` clips. Many sources state no licence at all.",
        "",
        "| licence (labels.csv `licence`) | clips |",
        "|---|---|",
        *(f"| {lic} | {n} |" for lic, n in by_licence.most_common()),
        "",
    ]
    if results:
        lines += _figures_section(results)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ouie.train.distill_card", description=__doc__)
    parser.add_argument(
        "--build", type=Path, required=True, help="folder with recipe.json (ensemble.json)"
    )
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--figures", type=Path, action="append", default=[])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    ensemble_file = args.build / ENSEMBLE_FILE
    recipe: Recipe | EnsembleRecipe = (
        EnsembleRecipe.model_validate_json(ensemble_file.read_text(encoding="utf-8"))
        if ensemble_file.is_file()
        else Recipe.model_validate_json((args.build / RECIPE_FILE).read_text(encoding="utf-8"))
    )
    excluded = set(recipe.excluded_sources)
    rows = training_files(args.data, excluded)
    results = [
        SourceSplitResult.model_validate_json(path.read_text(encoding="utf-8"))
        for path in args.figures
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    write_files_list(rows, args.out / FILES_LIST)
    (args.out / CARD_FILE).write_text(render_card(recipe, rows, results), encoding="utf-8")
    print(f"wrote {args.out / CARD_FILE} and {args.out / FILES_LIST} ({len(rows)} clips)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
