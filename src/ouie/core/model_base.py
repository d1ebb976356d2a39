"""One pydantic base for every message and config model: unknown keys are errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Base of all ouie models. A misspelt key fails loudly instead of being ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MutableStrictModel(BaseModel):
    """Strict model whose fields may be reassigned (config trees edited at run time)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
