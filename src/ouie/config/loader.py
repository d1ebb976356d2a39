"""Load a role's settings tree from a YAML file, with ``OUIE_<ROLE>__...`` env overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class ConfigError(ValueError):
    """A config file is missing, unreadable or invalid. The message is for people."""


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def describe_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(model: type[SettingsT], path: Path | None) -> SettingsT:
    """Values from ``path`` (if given), overridden key by key by ``OUIE_*`` env variables."""
    data = read_yaml(path) if path is not None else {}
    try:
        env_values = EnvSettingsSource(model)()
        return model.model_validate(deep_merge(data, env_values))
    except ValidationError as exc:
        source = str(path) if path is not None else "environment"
        raise ConfigError(describe_validation_error(exc, source)) from exc
