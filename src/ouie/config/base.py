"""The one base of every settings section: an unknown key is an error, not a silent default."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A section of a role's settings tree (``classifier:``, ``database:``, ``cueing:``, …)."""

    model_config = ConfigDict(extra="forbid")
