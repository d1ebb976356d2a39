"""docs/eval.md documents every field of the ``ouie eval`` JSON (datasette-style docs test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ouie.eval.result import documented_fields

DOC = Path(__file__).resolve().parents[2] / "docs" / "eval.md"

FIELDS = [(model, name) for model, names in documented_fields().items() for name in names]


@pytest.mark.parametrize(("model", "field"), FIELDS, ids=[f"{m}.{f}" for m, f in FIELDS])
def test_every_result_field_is_documented(model: str, field: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"### {model}\n", 1)
    assert len(section) == 2, f"docs/eval.md has no '### {model}' section"
    body = section[1].split("\n### ", 1)[0]
    assert f"| `{field}` |" in body, f"{model}.{field} is not in its table in docs/eval.md"


def test_every_model_of_the_result_is_covered() -> None:
    from pydantic import BaseModel

    from ouie.eval import result

    models = {
        name
        for name, value in vars(result).items()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == result.__name__
        and not name.startswith("_")
    }
    assert models == set(documented_fields())
