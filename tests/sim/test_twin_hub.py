"""The twin against the real hub: real nodes → bus or Mosquitto → ingest, fusion, API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ouie.sim.hubclient import LocalHub
from ouie.sim.runner import SimSettings, play
from ouie.sim.scenario import ScenarioSpec, build
from tests.node.fakes import LoudnessClassifier

LOUD_SHOT = ScenarioSpec.model_validate(
    {
        "name": "loud-shot",
        "duration_s": 5.0,
        "seed": 9,
        "atmosphere": {"temperature_c": 12.0},
        "ambience": {"scene": "night", "level_db_spl": 45.0, "source": "generated"},
        "events": [
            {
                "at_s": 1.5,
                "label": "gunshot",
                "source": "synthetic:shot",
                "position": {"x": 10.0, "y": 5.0},
                "level_db_spl": 150.0,
            }
        ],
    }
)


async def _play(broker: str | None = None) -> dict[str, object]:
    built = build(LOUD_SHOT)
    hub = LocalHub(temperature_c=12.0, broker=broker)
    await hub.start()
    try:
        return await play(
            built, hub, LoudnessClassifier(), SimSettings(backend="test", broker=broker)
        )
    finally:
        await hub.stop()


def _check(card: dict[str, object]) -> None:
    assert card["detected"] == 1 and card["missed"] == 0
    assert card["false_alarms"] == 0 and card["incidents"] == 1
    incident = card["incident_list"][0]  # type: ignore[index]
    assert incident["method"] == "tdoa" and incident["sensors"] >= 4
    # Real TDOA on rendered audio with jittered clocks: metres, not tens of metres.
    assert card["localisation_error_m"]["median"] < 5.0  # type: ignore[index]
    # Latency is measured (the incident became visible after the sound); how fast is not a
    # unit test's business: `ouie sim run` prints it, docs/twin.md records it.
    assert card["latency_s"]["n"] == 1 and card["latency_s"]["p95"] > 0.0  # type: ignore[index]
    assert card["events_not_visible"] == 0


def test_in_process_hub_locates_the_shot() -> None:
    _check(asyncio.run(_play()))


@pytest.mark.integration
def test_through_mosquitto(tmp_path: Path) -> None:
    from tests.integration.mosquitto import Mosquitto

    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        _check(asyncio.run(_play(broker.url)))
    finally:
        broker.stop()


def _two_sensor_shot(onsets: bool, broker: str | None = None) -> dict[str, object]:
    """A shot only its two nearest sensors classify (the loudness model's −20 dBFS): the
    others hear its bang, and with onsets on request they give their arrivals."""
    data = LOUD_SHOT.model_dump()
    data["events"][0]["level_db_spl"] = 128.0

    async def run() -> dict[str, object]:
        hub = LocalHub(temperature_c=12.0, broker=broker)
        await hub.start()
        try:
            return await play(
                build(ScenarioSpec.model_validate(data)),
                hub,
                LoudnessClassifier(),
                SimSettings(backend="test", onsets=onsets, broker=broker),
            )
        finally:
            await hub.stop()

    return asyncio.run(run())


def test_onsets_on_request_locate_a_shot_two_sensors_classified() -> None:
    card = _two_sensor_shot(onsets=True)
    assert card["events_published"] == 2 and card["detected"] == 1
    shot = card["shot_list"][0]  # type: ignore[index]
    assert shot["method"] == "tdoa" and shot["sensors"] >= 4
    assert card["localisation_error_m"]["n"] == 1  # type: ignore[index]
    assert card["localisation_error_m"]["median"] < 5.0  # type: ignore[index]
    # the same shot without the onsets: two sensors, an approximate area
    without = _two_sensor_shot(onsets=False)
    assert without["shot_list"][0]["method"] == "area"  # type: ignore[index]
    assert without["localisation_error_m"]["n"] == 0  # type: ignore[index]


@pytest.mark.integration
def test_onsets_on_request_through_mosquitto(tmp_path: Path) -> None:
    """The same through a real broker: the hub's requests and the nodes' answers go over
    MQTT (the hub publishes on each sensor's ``onset-request`` and reads ``+/onsets``)."""
    from tests.integration.mosquitto import Mosquitto

    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        card = _two_sensor_shot(onsets=True, broker=broker.url)
    finally:
        broker.stop()
    assert card["transport"] == "mqtt" and card["events_published"] == 2
    shot = card["shot_list"][0]  # type: ignore[index]
    assert shot["method"] == "tdoa" and shot["sensors"] >= 4, shot
    assert card["localisation_error_m"]["median"] < 5.0  # type: ignore[index]
