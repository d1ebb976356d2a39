"""The message-content guard: proof, from the schemas themselves, that no wire message can
carry audio, spectrogram frames or embeddings.

A field may hold a scalar, a bounded string, a timestamp, an enum, a nested message model
or a mapping from a label enum to a scalar (thresholds). Any list, tuple, set, bytes or
array type anywhere in a message schema is a violation. ``audit_models`` walks the models'
JSON schemas, so a field added later is checked without anyone remembering to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

MAX_STRING_LENGTH = 256
_FORBIDDEN_TYPES = frozenset({"array"})


def _walk(schema: dict[str, Any], defs: dict[str, Any], path: str, problems: list[str]) -> None:
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        _walk(defs[name], defs, path, problems)
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            _walk(option, defs, path, problems)
    kind = schema.get("type")
    if kind in _FORBIDDEN_TYPES:
        problems.append(f"{path}: sequences are not allowed in messages")
    if kind == "string":
        fmt = schema.get("format")
        if fmt in {"binary", "base64"} or schema.get("contentEncoding"):
            problems.append(f"{path}: binary content is not allowed in messages")
        limit = schema.get("maxLength")
        bounded = limit is not None and limit <= MAX_STRING_LENGTH
        fixed = "enum" in schema or "const" in schema
        if not (bounded or fixed or "pattern" in schema or fmt == "date-time"):
            problems.append(f"{path}: strings must be bounded (maxLength, pattern or enum)")
    if kind == "object":
        for name, sub in schema.get("properties", {}).items():
            _walk(sub, defs, f"{path}.{name}", problems)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            keys = schema.get("propertyNames", {})
            if "$ref" not in keys and "enum" not in keys:
                problems.append(f"{path}: mapping keys must come from an enum")
            _walk(extra, defs, f"{path}[*]", problems)
            if extra.get("type") not in {"number", "integer", "boolean"}:
                problems.append(f"{path}: mapping values must be scalars")
        elif extra is True:
            problems.append(f"{path}: open objects are not allowed in messages")


def audit_models(models: Iterable[type[BaseModel]]) -> list[str]:
    """Every way in which ``models`` could carry more than metadata (empty: none)."""
    problems: list[str] = []
    for model in models:
        schema = model.model_json_schema()
        _walk(schema, schema.get("$defs", {}), model.__name__, problems)
    return problems
