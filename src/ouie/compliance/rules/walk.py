"""Walking a config as written (nested mappings and lists), shared by the rules that examine
keys no settings model knows (a ``save_audio: true`` someone added)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any


def walk(value: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(dotted path, last key, value) for every mapping entry and list item, depth first."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            yield sub, str(key), item
            yield from walk(item, sub)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            sub = f"{path}[{index}]"
            yield sub, "", item
            yield from walk(item, sub)


def key_tokens(key: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)
    return {t for t in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if t}


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", [], {}) and str(value).lower() not in {
        "false",
        "no",
        "off",
        "none",
        "0",
    }
