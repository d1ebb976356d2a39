"""Average several distilled ouie-compact builds into one ONNX file.

    python -m ouie.train.ensemble --member BUILD --member BUILD [...] --out DIR

Why: one distillation run's out-of-source figures move a lot from run to run (docs/eval.md:
the same recipe rebuilt on another machine gave 0.195 recall at 2 % false clips where it
had given 0.275), and averaging members is the usual way to steady them. The mean of their
scores keeps ouie-compact's runtime contract (``logmel`` [n, 96, 64] → ``scores`` [n, 8],
one onnxruntime session, no torch on the node); each member's graph runs side by side on
the same input, so the cost is the sum of theirs. Measured on the source-disjoint yardstick
and not shipped so far (docs/eval.md, session 9): the mean of two seeds of the shipped recipe
was ahead at 1-2 % false clips and behind at 5 %, for twice the classifier's cost.

Every member must leave out the same sources (``build.json``), so a source-disjoint build
stays source-disjoint. ``DIR`` gets ``ouie_compact.onnx`` and its digest, ``ensemble.json``
(the members' recipes, which ``ouie.train.distill_card`` reads) and, for source-disjoint
members, a ``build.json`` that ``ouie eval --split source --builds`` reads.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, compose, helper
from pydantic import BaseModel, ConfigDict, Field

from ouie.eval.builds import BUILD_FILE, BuildInfo
from ouie.node.classifiers.compact import model_id_for
from ouie.train.compact import DIGEST_NAME, INPUT_NAME, MODEL_NAME, OUTPUT_NAME, write_digest
from ouie.train.distill import RECIPE_FILE, Recipe

ENSEMBLE_FILE = "ensemble.json"


class EnsembleRecipe(BaseModel):
    """``ensemble.json``: what an averaged model is made of."""

    model_config = ConfigDict(extra="forbid")

    command: str
    members: list[Recipe] = Field(min_length=2)
    member_ids: list[str] = Field(min_length=2, description="each member's model id")

    @property
    def excluded_sources(self) -> list[str]:
        return self.members[0].excluded_sources


def merge_graphs(members: list[onnx.ModelProto]) -> onnx.ModelProto:
    """One graph: every member on the shared ``logmel`` input, ``scores`` their mean."""
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two members")
    first = members[0]
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    outputs: list[str] = []
    for i, member in enumerate(members):
        inputs = [x.name for x in member.graph.input]
        if inputs != [INPUT_NAME] or [x.name for x in member.graph.output] != [OUTPUT_NAME]:
            raise ValueError(f"member {i} is not an ouie-compact graph ({inputs} → scores)")
        # Prefix every internal name so the members' weights cannot collide; the input keeps
        # its name, so all members read the same patches.
        renamed = compose.add_prefix(member, prefix=f"m{i}_", rename_inputs=False)
        nodes += list(renamed.graph.node)
        initializers += list(renamed.graph.initializer)
        outputs.append(renamed.graph.output[0].name)
    initializers.append(
        helper.make_tensor("ensemble_weight", TensorProto.FLOAT, [], [1 / len(members)])
    )
    nodes += [
        helper.make_node("Sum", outputs, ["ensemble_sum"]),
        helper.make_node("Mul", ["ensemble_sum", "ensemble_weight"], [OUTPUT_NAME]),
    ]
    graph = helper.make_graph(
        nodes,
        "ouie_compact_ensemble",
        [first.graph.input[0]],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", 8])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=list(first.opset_import), ir_version=first.ir_version
    )
    onnx.checker.check_model(model)
    return model


def _read_recipe(build: Path) -> Recipe:
    path = build / RECIPE_FILE
    if not path.is_file():
        raise ValueError(f"{build} has no {RECIPE_FILE}: not a build of ouie.train.distill")
    return Recipe.model_validate_json(path.read_text(encoding="utf-8"))


def build_ensemble(members: list[Path], out_dir: Path, command: str = "") -> str:
    """Write the averaged model of ``members`` (build folders) to ``out_dir``; its model id."""
    recipes = [_read_recipe(build) for build in members]
    excluded = {tuple(sorted(r.excluded_sources)) for r in recipes}
    if len(excluded) != 1:
        raise ValueError("the members leave out different sources: " + str(sorted(excluded)))
    model = merge_graphs([onnx.load(str(build / MODEL_NAME)) for build in members])
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / MODEL_NAME
    onnx.save(model, str(model_path))
    model_id = model_id_for(write_digest(model_path))
    member_ids = [
        model_id_for((build / DIGEST_NAME).read_text(encoding="utf-8").split()[0])
        for build in members
    ]
    recipe = EnsembleRecipe(command=command, members=recipes, member_ids=member_ids)
    (out_dir / ENSEMBLE_FILE).write_text(recipe.model_dump_json(indent=2) + "\n", "utf-8")
    if recipes[0].excluded_sources:
        info = BuildInfo(
            excluded_sources=recipes[0].excluded_sources,
            model_id=model_id,
            trained_sources=recipes[0].trained_sources,
            teachers=recipes[0].teachers,
        )
        (out_dir / BUILD_FILE).write_text(info.model_dump_json(indent=2) + "\n", "utf-8")
    return model_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ouie.train.ensemble", description=__doc__)
    parser.add_argument("--member", type=Path, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if len(args.member) < 2:
        parser.error("give at least two --member build folders")
    command = shlex.join(["python", "-m", "ouie.train.ensemble", *(argv or sys.argv[1:])])
    try:
        model_id = build_ensemble(args.member, args.out, command)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out / MODEL_NAME} ({model_id}, mean of {len(args.member)} members)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
