from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, Field, ValidationError

from ouie.core.labels import EventLabel
from ouie.core.messages import ALL_MESSAGE_MODELS, EventMessage
from ouie.core.model_base import StrictModel
from ouie.privacy.message_guard import audit_models


def test_no_wire_message_can_carry_samples_or_features() -> None:
    assert audit_models(ALL_MESSAGE_MODELS) == []


class _LeakyList(StrictModel):
    samples: list[float]


class _LeakyBytes(StrictModel):
    audio: bytes


class _LeakyText(StrictModel):
    transcript: str


class _LeakyNested(StrictModel):
    inner: _LeakyList


class _LeakyMapping(StrictModel):
    embedding: dict[str, float]


class _LeakyTuple(BaseModel):
    frame: tuple[float, float, float] = Field(default=(0.0, 0.0, 0.0))


@pytest.mark.parametrize(
    "model", [_LeakyList, _LeakyBytes, _LeakyText, _LeakyNested, _LeakyMapping, _LeakyTuple]
)
def test_guard_catches_each_way_to_smuggle_content(model: type[BaseModel]) -> None:
    assert audit_models([model]) != []


def _event(**extra: object) -> dict[str, object]:
    now = datetime.now(UTC)
    data: dict[str, object] = dict(
        site="s",
        sensor_id="n1",
        label="gunshot",
        onset=now,
        offset=now,
        peak_score=0.9,
        level_dbfs=-20.0,
        model_id="m",
        sequence=0,
    )
    data.update(extra)
    return data


def test_extra_fields_are_refused_at_validation() -> None:
    EventMessage.model_validate(_event())
    with pytest.raises(ValidationError):
        EventMessage.model_validate(_event(samples=[0.1, 0.2]))
    with pytest.raises(ValidationError):
        EventMessage.model_validate(_event(label="speech"))
    assert "speech" not in {label.value for label in EventLabel}
