"""Per-backend default thresholds, tuned on development folds by ``ouie eval tune``.

AudioSet taggers and ouie-compact put their scores on different scales (a gunshot may
score 0.3 on one and 0.9 on another), so a single default threshold would be wrong for
all but one. Each model family (the part of ``model_id`` before ``@``) can ship a JSON
file in ``ouie/node/classifiers/tuned/`` written by the tuner, recording the folds it was
tuned on. Thresholds set in the node config always win over these defaults.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

from ouie.config.node import EventSettings
from ouie.core.labels import EventLabel


class TunedThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_family: str
    thresholds: dict[EventLabel, float]
    tuned_on: str = Field(description="dataset and folds the thresholds were chosen on")
    objective: str
    date: str


def model_family(model_id: str) -> str:
    return model_id.split("@", 1)[0]


@lru_cache(maxsize=16)
def tuned_for(model_id: str) -> TunedThresholds | None:
    name = f"{model_family(model_id)}.json"
    entry = resources.files("ouie.node.classifiers").joinpath("tuned", name)
    if not entry.is_file():
        return None
    return TunedThresholds.model_validate(json.loads(entry.read_text(encoding="utf-8")))


def with_tuned_defaults(events: EventSettings, model_id: str) -> EventSettings:
    """``events`` with the backend's tuned thresholds under any explicitly configured ones."""
    tuned = tuned_for(model_id)
    if tuned is None:
        return events
    merged = {**tuned.thresholds, **events.thresholds}
    return events.model_copy(update={"thresholds": merged})
