"""docs/twin.md documents every scorecard key and every site and scenario setting."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from ouie.config.site import CameraSpec, DroneDockSpec, SensorSpec, SiteSpec
from ouie.sim.acoustics import Atmosphere, PropagationSettings
from ouie.sim.ambience import AmbienceSettings
from ouie.sim.runner import SimSettings, play
from ouie.sim.scenario import EventSpec, Repeat, ScenarioSpec, build
from tests.node.fakes import LoudnessClassifier
from tests.sim.fakes import FakeHub
from tests.sim.test_runner import SHOT

DOC = (Path(__file__).resolve().parents[2] / "docs" / "twin.md").read_text(encoding="utf-8")


def rows() -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \|", DOC, flags=re.MULTILINE))


@pytest.mark.parametrize("model", [SiteSpec, ScenarioSpec, EventSpec])
def test_every_top_level_setting_has_a_row(model: type[BaseModel]) -> None:
    missing = set(model.model_fields) - rows()
    assert not missing, f"{model.__name__} fields missing from docs/twin.md: {missing}"


@pytest.mark.parametrize(
    "model",
    [
        SensorSpec,
        CameraSpec,
        DroneDockSpec,
        Atmosphere,
        AmbienceSettings,
        PropagationSettings,
        Repeat,
    ],
)
def test_every_nested_setting_is_named(model: type[BaseModel]) -> None:
    missing = {name for name in model.model_fields if name not in DOC}
    assert not missing, f"{model.__name__} fields missing from docs/twin.md: {missing}"


def test_every_scorecard_key_is_documented() -> None:
    card = asyncio.run(
        play(build(SHOT), FakeHub(), LoudnessClassifier(), SimSettings(backend="test"))
    )
    missing = set(card) - rows()
    assert not missing, f"scorecard keys missing from docs/twin.md: {missing}"
    nested = {
        key
        for name in ("localisation_error_m", "latency_s", "node_cpu", "detections", "rounds")
        for key in card[name]
    }
    nested |= set(card["sources"])
    nested |= set(card["truth"][0]) | set(card["incident_list"][0]) | set(card["shot_list"][0])
    nested |= set(next(iter(card["per_class"].values())))
    assert not {key for key in nested if key not in DOC}
