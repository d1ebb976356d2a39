"""docs/hub.md's permission table is the one the code enforces."""

from __future__ import annotations

from pathlib import Path

from ouie.hub.auth import PERMISSIONS, Perm, Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "hub.md"


def test_permission_table_matches_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- permission-table:start -->")[1].split("<!-- permission-table:end -->")[
        0
    ]
    rows = [line for line in block.strip().splitlines() if line.startswith("| `")]
    documented: dict[Role, set[Perm]] = {role: set() for role in Role}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        perm = Perm(cells[0].strip("`"))
        for role, cell in zip(Role, cells[1:], strict=True):
            if cell == "✓":
                documented[role].add(perm)
    assert len(rows) == len(Perm)
    assert {role: frozenset(perms) for role, perms in documented.items()} == PERMISSIONS


def test_documented_fusion_settings_are_the_defaults() -> None:
    """The `fusion:` section of the documented hub.yaml parses, and says what the code does."""
    import yaml

    from ouie.config.hub import FusionSettings

    text = DOC.read_text(encoding="utf-8")
    example = text.split("## Configuration (`hub.yaml`)")[1].split("```yaml")[1].split("```")[0]
    fusion = yaml.safe_load(example)["fusion"]
    assert FusionSettings(**fusion) == FusionSettings()
