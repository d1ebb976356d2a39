"""A node with an identity signs every event and status, and refuses any config that the
hub did not sign or that is older than the one in force (issue 18, finding 4); it reports
the refusals in its heartbeat. The same node end to end over Mosquitto:
tests/integration/test_sensor_trust.py."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest

from ouie.config.node import NodeSettings
from ouie.core.labels import EventLabel
from ouie.core.messages import ThresholdConfigMessage, topic_for
from ouie.node.runtime import NodeRuntime
from ouie.transport.inproc import InProcBus
from ouie.transport.signing import SigningKey, SigningKeyError
from tests.node.fakes import LoudnessClassifier
from tests.node.test_runtime import ORIGIN, bangs, drain, source_of


@pytest.fixture
def keys(tmp_path: Path) -> tuple[SigningKey, SigningKey, Path, Path]:
    node, hub = SigningKey.generate(), SigningKey.generate()
    node.save(tmp_path / "signing.key")
    hub.public.save(tmp_path / "hub-signing.pub")
    return node, hub, tmp_path / "signing.key", tmp_path / "hub-signing.pub"


def _settings(signing_key: Path | None, hub_public_key: Path | None) -> NodeSettings:
    return NodeSettings.model_validate(
        {
            "site": "s1",
            "sensor_id": "n1",
            "events": {"merge_gap_s": 0.5},
            "publish": {"kind": "inproc", "status_interval_s": 0.05},
            "identity": {
                "signing_key": None if signing_key is None else str(signing_key),
                "hub_public_key": None if hub_public_key is None else str(hub_public_key),
            },
        }
    )


def _config(threshold: float, seconds: float = 0.0) -> ThresholdConfigMessage:
    return ThresholdConfigMessage(
        site="s1",
        sensor_id="n1",
        issued_at=ORIGIN + timedelta(seconds=seconds),
        thresholds={EventLabel.GUNSHOT: threshold},
    )


def test_events_and_status_are_signed(keys: tuple[SigningKey, SigningKey, Path, Path]) -> None:
    node_key, _, signing, hub_pub = keys

    async def main() -> InProcBus:
        bus = InProcBus()
        watch = bus.subscribe("ouie/v1/#")
        runtime = NodeRuntime(
            _settings(signing, hub_pub),
            classifier=LoudnessClassifier(),
            source=source_of(bangs([1.0, 3.0], 4.0)),
            bus=bus,
            clock_origin=ORIGIN,
            handle_signals=False,
        )
        await runtime.run()
        events, statuses = drain(watch)
        assert len(events) == 2 and statuses
        for message in [*events, *statuses]:
            assert node_key.public.verify_message(message), message
        return bus

    asyncio.run(main())


def test_only_configs_signed_by_the_hub_reach_the_thresholds(
    keys: tuple[SigningKey, SigningKey, Path, Path],
) -> None:
    _, hub_key, signing, hub_pub = keys
    topic = topic_for("s1", "n1", "config")

    async def main() -> NodeRuntime:
        bus = InProcBus()
        watch = bus.subscribe("ouie/v1/+/+/status")
        runtime = NodeRuntime(
            _settings(signing, hub_pub),
            classifier=LoudnessClassifier(),
            source=source_of(bangs([], 1.0), endless=True),
            bus=bus,
            handle_signals=False,
        )
        task = asyncio.create_task(runtime.run())
        deliveries = [
            _config(0.999),  # unsigned (finding 4a: the sensor would go silent)
            SigningKey.generate().sign_message(_config(0.999, 1)),  # someone else's key
            hub_key.sign_message(_config(0.42, 2)),  # the hub's: applied
            hub_key.sign_message(_config(0.999, 1)),  # the hub's, but older: replayed
            hub_key.sign_message(_config(0.42, 2)).model_copy(  # altered after signing
                update={"thresholds": {EventLabel.GUNSHOT: 0.999}}
            ),
        ]
        for message in deliveries:
            await bus.publish(topic, message.model_dump_json().encode(), retain=True)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        runtime.request_stop()
        await task
        statuses = drain(watch)[1]
        assert statuses[-1].rejected_configs == 4  # the hub hears of it (finding 4a)
        return runtime

    runtime = asyncio.run(main())
    assert runtime.rejected_configs == 4
    assert runtime.events_settings.thresholds == {EventLabel.GUNSHOT: 0.42}


def test_without_the_hubs_key_configs_are_taken_as_before(tmp_path: Path) -> None:
    """Development set-ups (the demo's in-process bus) have no keys: nothing changes."""

    async def main() -> NodeRuntime:
        bus = InProcBus()
        await bus.publish(
            topic_for("s1", "n1", "config"), _config(0.6).model_dump_json().encode(), retain=True
        )
        runtime = NodeRuntime(
            _settings(None, None),
            classifier=LoudnessClassifier(),
            source=source_of(bangs([1.0], 2.0)),
            bus=bus,
            handle_signals=False,
        )
        await runtime.run()
        return runtime

    runtime = asyncio.run(main())
    assert runtime.rejected_configs == 0
    assert runtime.events_settings.thresholds == {EventLabel.GUNSHOT: 0.6}


def test_a_bad_key_file_stops_the_node_at_start(tmp_path: Path) -> None:
    junk = tmp_path / "junk.key"
    junk.write_text(json.dumps({"not": "a key"}))
    with pytest.raises(SigningKeyError):
        NodeRuntime(_settings(junk, None), handle_signals=False)
    with pytest.raises(FileNotFoundError):
        NodeRuntime(_settings(tmp_path / "missing.key", None), handle_signals=False)
