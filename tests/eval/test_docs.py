"""docs/eval.md documents every field of the ``ouie eval`` JSON (datasette-style docs test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ouie.eval import alarm_result, source_result
from ouie.eval.builds import BuildInfo
from ouie.eval.result import documented_fields
from ouie.node.tuned import TunedThresholds

DOC = Path(__file__).resolve().parents[2] / "docs" / "eval.md"

FIELDS = [
    (model, name)
    for models in (
        documented_fields(),
        source_result.documented_fields(),
        alarm_result.documented_fields(),
        {"BuildInfo": list(BuildInfo.model_fields)},  # build.json of `--builds`
        {"TunedThresholds": list(TunedThresholds.model_fields)},  # --write-thresholds
    )
    for model, names in models.items()
    for name in names
]


@pytest.mark.parametrize(("model", "field"), FIELDS, ids=[f"{m}.{f}" for m, f in FIELDS])
def test_every_result_field_is_documented(model: str, field: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"### {model}\n", 1)
    assert len(section) == 2, f"docs/eval.md has no '### {model}' section"
    body = section[1].split("\n### ", 1)[0]
    assert f"| `{field}` |" in body, f"{model}.{field} is not in its table in docs/eval.md"


@pytest.mark.parametrize("module", ["result", "source_result", "alarm_result"])
def test_every_model_of_the_result_is_covered(module: str) -> None:
    import importlib

    from pydantic import BaseModel

    found = importlib.import_module(f"ouie.eval.{module}")
    models = {
        name
        for name, value in vars(found).items()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == found.__name__
        and not name.startswith("_")
    }
    assert models == set(found.documented_fields())
