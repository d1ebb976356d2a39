"""Only real sensors are heard: the probes of issue 18 (findings 1–5) against a real
Mosquitto started with the config ``ouie broker config`` writes, a real hub and a real node.

The site CA, the hub's identity and each sensor's certificate and signing key are made the
way an operator makes them (``ouie pki init`` via ``SitePki``, ``ouie sensor add`` through
the CLI). Then:

* the broker refuses an anonymous client, a plain-TCP client and a client whose
  certificate another CA signed; a sensor's certificate lets it write only its own events
  and status, read only its own config, and not take over the hub's session;
* forged, re-signed, unsigned, replayed (same payload, a stored sequence, old onset) and stale
  messages published with a stolen sensor certificate never become an incident, and an old
  heartbeat does not refresh a sensor; each refusal is counted per sensor and audited;
* a config that the hub did not sign (written with a stolen hub certificate, or by a
  sensor) never reaches the node's thresholds, and the node tells the hub it refused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import aiomqtt
import numpy as np
import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from ouie.cli import app
from ouie.config.hub import HubSettings
from ouie.config.node import MqttSettings, NodeSettings
from ouie.core.labels import EventLabel
from ouie.core.messages import EventMessage, StatusMessage, ThresholdConfigMessage, topic_for
from ouie.core.timebase import utc_now
from ouie.hub.db import AuditEntry, DeadLetter, Detection, Incident, Sensor, SensorRejection
from ouie.hub.pki import SitePki
from ouie.hub.service import Hub
from ouie.node.runtime import NodeRuntime
from ouie.node.sources import AudioChunk, AudioSource
from ouie.transport.mqtt import MqttPublisher
from ouie.transport.signing import SigningKey
from ouie.transport.spool import Spool
from ouie.web.data import sensor_dict
from tests.hub.helpers import FRAME, SITE, events_for_source, sensor_grid, status_for
from tests.integration.trusted_broker import TrustedBroker
from tests.node.fakes import LoudnessClassifier

pytestmark = [pytest.mark.integration, pytest.mark.needs("mosquitto")]

LAYOUT = sensor_grid(3)
MOUNT = 4.0


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TrustedBroker, Path]]:
    """The CA, a broker with ouie's config, and the three sensors registered with
    ``ouie sensor add`` (which issues their identities); yields the broker and hub.yaml."""
    pki = SitePki(tmp_path / "pki")
    pki.init(broker_hosts=("127.0.0.1", "localhost"))
    broker = TrustedBroker(tmp_path, pki)
    hub_yaml = tmp_path / "hub.yaml"
    hub_yaml.write_text(
        yaml.safe_dump(
            {
                "database": {
                    "url": f"sqlite:///{tmp_path / 'hub.sqlite3'}",
                    "batch_wait_ms": 5.0,
                },
                "mqtt": {
                    "enabled": True,
                    "url": broker.url,
                    "client_id": "ouie-hub",
                    "session_expiry_s": 300,
                    "tls": json.loads(broker.hub_tls().model_dump_json()),
                },
                "ingest": {"require_signatures": True},
                "identity": {"pki_dir": str(pki.root)},
            }
        ),
        encoding="utf-8",
    )
    runner = CliRunner()
    for sensor_id, east, north in LAYOUT:
        lat, lon, height = FRAME.to_geodetic(east, north, MOUNT)
        result = runner.invoke(
            app,
            [
                "sensor",
                "add",
                SITE,
                sensor_id,
                f"--lat={lat}",
                f"--lon={lon}",
                f"--height={height}",
                f"--mount={MOUNT}",
                "--config",
                str(hub_yaml),
            ],
        )
        assert result.exit_code == 0, result.output
        assert "signing_key:" in result.output  # the node settings it prints
    broker.start()
    try:
        yield broker, hub_yaml
    finally:
        broker.stop()


def _settings(hub_yaml: Path) -> HubSettings:
    return HubSettings.model_validate(yaml.safe_load(hub_yaml.read_text(encoding="utf-8")))


async def _until(check: Callable[[], bool], timeout_s: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _running_hub(hub_yaml: Path) -> AsyncIterator[Hub]:
    hub = Hub(_settings(hub_yaml))
    await hub.start()
    try:
        assert hub.mqtt is not None
        await asyncio.wait_for(hub.mqtt.connected.wait(), 15)
        yield hub
    finally:
        await hub.stop()
        hub.close()


def _signer(broker: TrustedBroker, sensor_id: str) -> SigningKey:
    return SigningKey.load(broker.pki.sensor_dir(SITE, sensor_id) / "signing.key")


async def _refused(client: aiomqtt.Client) -> bool:
    try:
        async with client:
            await client.publish(topic_for(SITE, "s1", "events"), b"{}", qos=1)
    except aiomqtt.MqttError:
        return True
    return False


# --------------------------------------------------------------------------- the broker


def test_the_broker_refuses_anonymous_plain_and_foreign_clients(
    site: tuple[TrustedBroker, Path], tmp_path: Path
) -> None:
    broker, _ = site
    stranger = SitePki(tmp_path / "another-ca")
    stranger.init(broker_hosts=("127.0.0.1",))
    forged = stranger.issue_sensor(SITE, "s1")  # the right name, the wrong CA

    async def main() -> None:
        # TLS, but no client certificate
        assert await _refused(broker.client(None, "anonymous", timeout=2.0))
        # no TLS at all: the broker has no plain listener, loopback included
        assert await _refused(
            aiomqtt.Client("127.0.0.1", broker.port, identifier="plain", timeout=2.0)
        )
        # a certificate for s1 from another CA
        tls = broker.sensor_tls(SITE, "s1").model_copy(
            update={
                "cert_file": forged.certificate.cert_file,
                "key_file": forged.certificate.key_file,
            }
        )
        assert await _refused(broker.client(tls, "forged", timeout=2.0))
        # the genuine certificate is accepted
        assert not await _refused(broker.client(broker.sensor_tls(SITE, "s1"), "genuine"))

    asyncio.run(main())
    log = broker.log_text()
    assert "peer did not return a certificate" in log
    assert "u'testsite/s1'" in log  # the certificate's name became the user name


def test_a_sensor_writes_only_its_own_topics_and_cannot_take_the_hubs_session(
    site: tuple[TrustedBroker, Path],
) -> None:
    broker, _ = site
    seen: list[tuple[str, bytes]] = []
    s1_seen: list[str] = []

    async def collect(client: aiomqtt.Client, into: Callable[[aiomqtt.Message], None]) -> None:
        async for message in client.messages:
            into(message)

    async def main() -> None:
        hub = broker.client(broker.hub_tls(), "ouie-hub", protocol=aiomqtt.ProtocolVersion.V5)
        async with hub:
            await hub.subscribe("ouie/v1/#", qos=1)
            hub_task = asyncio.create_task(
                collect(hub, lambda m: seen.append((str(m.topic), bytes(m.payload))))  # type: ignore[arg-type]
            )
            s1 = broker.client(broker.sensor_tls(SITE, "s1"), "ouie-hub")  # the hub's id
            async with s1:
                await s1.subscribe("ouie/v1/#", qos=1)
                s1_task = asyncio.create_task(collect(s1, lambda m: s1_seen.append(str(m.topic))))
                await s1.publish(topic_for(SITE, "s1", "events"), b"own event", qos=1)
                await s1.publish(topic_for(SITE, "s1", "status"), b"own status", qos=1)
                await s1.publish(topic_for(SITE, "s2", "events"), b"as s2", qos=1)
                await s1.publish(topic_for(SITE, "s2", "status"), b"as s2", qos=1)
                await s1.publish(topic_for(SITE, "s1", "config"), b"own config", retain=True)
                await s1.publish(topic_for(SITE, "s1", "ack"), b"own receipt", qos=1)
                # the hub writes configs; s1 may read only its own
                await hub.publish(topic_for(SITE, "s1", "config"), b"for s1", qos=1)
                await hub.publish(topic_for(SITE, "s2", "config"), b"for s2", qos=1)
                await _until(lambda: len(seen) >= 4, 10, "the hub's messages")
                await asyncio.sleep(0.5)  # anything refused would have arrived by now
                s1_task.cancel()
            hub_task.cancel()
            # s1 connected with the hub's client id and the hub is still connected: the
            # broker replaced the id with the certificate's name
            await hub.publish(topic_for(SITE, "s3", "config"), b"still here", qos=1)

    asyncio.run(main())
    topics = sorted({topic for topic, _ in seen})
    assert (topic_for(SITE, "s1", "events"), b"own event") in seen
    assert (topic_for(SITE, "s1", "status"), b"own status") in seen
    assert not [t for t, p in seen if p in {b"as s2", b"own config", b"own receipt"}], topics
    assert s1_seen == [topic_for(SITE, "s1", "config")]  # not s2's, not the hub's traffic
    assert "as testsite/s1" in broker.log_text()


# ------------------------------------------------------------------------------ the hub


def _signed_shot(
    broker: TrustedBroker, t0_offset_s: float, sequence: int, east: float = 5.0
) -> list[EventMessage]:
    events = events_for_source(
        LAYOUT, east, 10.0, utc_now() - timedelta(seconds=t0_offset_s), sequence=sequence
    )
    return [_signer(broker, e.sensor_id).sign_message(e) for e in events]


async def _publish_as_nodes(
    broker: TrustedBroker, folder: Path, messages: list[EventMessage | StatusMessage]
) -> None:
    """Through the node's own transport (spool, mqtts, its certificate), until the hub's
    receipt for each."""
    for sensor_id in sorted({m.sensor_id for m in messages}):
        publisher = MqttPublisher(
            MqttSettings(url=broker.url, tls=broker.sensor_tls(SITE, sensor_id)),
            Spool(folder / f"{sensor_id}.spool"),
            SITE,
            sensor_id,
        )
        await publisher.start()
        for message in messages:
            if message.sensor_id != sensor_id:
                continue
            if isinstance(message, EventMessage):
                await publisher.publish_event(message)
            else:
                await publisher.publish_status(message)
        assert await publisher.flush(20), f"{sensor_id}: the hub did not confirm"
        await publisher.close()


def test_forged_and_replayed_messages_never_become_incidents(
    site: tuple[TrustedBroker, Path], tmp_path: Path
) -> None:
    broker, hub_yaml = site
    genuine = _signed_shot(broker, 2.0, sequence=5)
    s1_event = next(e for e in genuine if e.sensor_id == "s1")
    wrong_key = SigningKey.generate()
    s1 = "s1"

    def later(sequence: int, seconds_ago: float = 1.0) -> EventMessage:
        onset = utc_now() - timedelta(seconds=seconds_ago)
        return s1_event.model_copy(
            update={
                "message_id": f"{sequence:032x}",
                "sequence": sequence,
                "onset": onset,
                "offset": onset + timedelta(seconds=0.3),
                "signature": None,
            }
        )

    forged: list[tuple[str, bytes]] = [
        # 1. the same payload again: a duplicate, stored once
        ("duplicate", s1_event.model_dump_json().encode()),
        # 2. a new message id on the old payload (finding 3a): the signature breaks
        (
            "bad_signature",
            s1_event.model_copy(update={"message_id": "f" * 32}).model_dump_json().encode(),
        ),
        # 3. a fresh message signed with another key (a stolen certificate, not the key)
        ("bad_signature", wrong_key.sign_message(later(10)).model_dump_json().encode()),
        # 4. no signature at all (finding 1)
        ("unsigned", later(11).model_dump_json().encode()),
        # 5. correctly signed, but with a sequence already stored (3b); an unstored one
        # below the last is a late resend (tests/hub/test_trust.py), stored once
        ("replay", _signer(broker, s1).sign_message(later(5)).model_dump_json().encode()),
        # 6. correctly signed and newer, but its onset is 6 days old (3c)
        (
            "clock_stale",
            _signer(broker, s1)
            .sign_message(later(12, seconds_ago=6 * 86400))
            .model_dump_json()
            .encode(),
        ),
    ]
    old_status = _signer(broker, s1).sign_message(
        status_for(s1).model_copy(update={"sent_at": utc_now() - timedelta(seconds=60)})
    )
    status_forgeries = [
        ("unsigned", status_for(s1).model_dump_json().encode()),
        ("replay", old_status.model_dump_json().encode()),
    ]

    async def main() -> None:
        async with _running_hub(hub_yaml) as hub:
            fresh_status = _signer(broker, s1).sign_message(status_for(s1))
            await _publish_as_nodes(broker, tmp_path, [*genuine, fresh_status])

            def counts() -> tuple[int, int]:
                with hub.sessions() as session:
                    return (
                        session.scalar(select(func.count()).select_from(Incident)) or 0,
                        session.scalar(select(func.count()).select_from(Detection)) or 0,
                    )

            await _until(lambda: counts() == (1, 3), what="the genuine shot's incident")
            with hub.sessions() as session:
                seen_before = session.scalar(
                    select(Sensor.last_seen_at).where(Sensor.sensor_id == s1)
                )

            # A stolen s1 certificate: the broker lets these through, the hub must not.
            async with broker.client(broker.sensor_tls(SITE, s1), "thief") as thief:
                for _, payload in forged:
                    await thief.publish(topic_for(SITE, s1, "events"), payload, qos=1)
                for _, payload in status_forgeries:
                    await thief.publish(topic_for(SITE, s1, "status"), payload, qos=1)
            expected = [r for r, _ in [*forged, *status_forgeries] if r != "duplicate"]

            def dead() -> list[str]:
                with hub.sessions() as session:
                    return list(session.scalars(select(DeadLetter.reason).order_by(DeadLetter.id)))

            await _until(lambda: len(dead()) >= len(expected), what="the refusals")
            await hub.drain()
            assert sorted(dead()) == sorted(expected)  # one batch: refused by stage, not order
            assert counts() == (1, 3)  # no incident, no detection from any of them

            with hub.sessions() as session:
                sensor = session.scalars(select(Sensor).where(Sensor.sensor_id == s1)).one()
                assert sensor.last_seen_at == seen_before  # the old heartbeat changed nothing
                assert sensor.last_sequence == 5
                rejections = {
                    r.reason: r.count
                    for r in session.scalars(
                        select(SensorRejection).where(SensorRejection.sensor_pk == sensor.id)
                    )
                }
                view = sensor_dict(sensor, utc_now(), 120.0)
                audited = list(
                    session.scalars(
                        select(AuditEntry.detail).where(
                            AuditEntry.action == "sensor.messages_rejected"
                        )
                    )
                )
            assert rejections == {"bad_signature": 2, "unsigned": 2, "replay": 2, "clock_stale": 1}
            assert view["rejected_total"] == 7  # what the console's sensor page shows
            assert {r["reason"] for r in view["rejections"]} == set(rejections)
            assert {json.loads(d)["reason"] for d in audited} == set(rejections)

    asyncio.run(main())


# ----------------------------------------------------------------------------- the node


def test_a_forged_config_never_reaches_the_node(
    site: tuple[TrustedBroker, Path], tmp_path: Path
) -> None:
    broker, hub_yaml = site
    identity = broker.pki.sensor_dir(SITE, "s1")
    rate = 16000
    stop = asyncio.Event()

    async def chunks() -> AsyncIterator[AudioChunk]:
        rng = np.random.default_rng(7)
        n = 0
        while not stop.is_set():
            block = (rng.standard_normal(1600) * 0.003).astype(np.float32)
            if n == 5:  # one bang, half a second in: a real, signed event
                block[:800] += 0.8 * np.exp(-np.arange(800) / 160.0).astype(np.float32)
            yield AudioChunk(block)
            n += 1
            await asyncio.sleep(0.1)  # real time: onsets stay within the replay window

    settings = NodeSettings.model_validate(
        {
            "site": SITE,
            "sensor_id": "s1",
            "events": {"merge_gap_s": 0.5},
            "publish": {
                "kind": "mqtt",
                "mqtt": {
                    "url": broker.url,
                    "tls": json.loads(broker.sensor_tls(SITE, "s1").model_dump_json()),
                },
                "spool": {"path": str(tmp_path / "node.spool")},
                "status_interval_s": 0.2,
            },
            "identity": {
                "signing_key": str(identity / "signing.key"),
                "hub_public_key": str(identity / "hub-signing.pub"),
            },
        }
    )
    gunshot = EventLabel.GUNSHOT

    def forged(thresholds: float, key: SigningKey | None = None) -> bytes:
        message = ThresholdConfigMessage(
            site=SITE, sensor_id="s1", issued_at=utc_now(), thresholds={gunshot: thresholds}
        )
        return (key.sign_message(message) if key else message).model_dump_json().encode()

    async def main() -> None:
        async with _running_hub(hub_yaml) as hub:
            runtime = NodeRuntime(
                settings,
                classifier=LoudnessClassifier(),
                source=AudioSource(rate, chunks()),
                clock_origin=utc_now(),
                handle_signals=False,
            )
            task = asyncio.create_task(runtime.run())

            def stored(query: Callable[[], Awaitable[None]] | None = None) -> int:
                with hub.sessions() as session:
                    return session.scalar(select(func.count()).select_from(Detection)) or 0

            await _until(lambda: stored() == 1, what="the node's signed event")
            config_topic = topic_for(SITE, "s1", "config")

            # the hub's own, signed config is applied
            await hub.publish_thresholds(SITE, "s1", {"gunshot": 0.42})
            await _until(lambda: runtime.events_settings.thresholds.get(gunshot) == 0.42)

            # another sensor writes s1's config: the broker's ACL drops it
            async with broker.client(broker.sensor_tls(SITE, "s2"), "s2") as s2:
                await s2.publish(config_topic, forged(0.999), qos=1, retain=True)
            # the hub's certificate, stolen without the hub's signing key (finding 4a)
            async with broker.client(broker.hub_tls(), "thief") as thief:
                await thief.publish(config_topic, forged(0.999), qos=1, retain=True)
                await _until(lambda: runtime.rejected_configs == 1, what="the unsigned config")
                await thief.publish(
                    config_topic, forged(0.999, SigningKey.generate()), qos=1, retain=True
                )
                await _until(lambda: runtime.rejected_configs == 2, what="the mis-signed one")
            await asyncio.sleep(0.5)
            assert runtime.events_settings.thresholds.get(gunshot) == 0.42

            def reported() -> int:
                with hub.sessions() as session:
                    status = session.scalar(
                        select(Sensor.last_status).where(Sensor.sensor_id == "s1")
                    )
                return int((status or {}).get("rejected_configs", 0))

            await _until(lambda: reported() == 2, what="the heartbeat telling the hub")
            stop.set()
            summary = await asyncio.wait_for(task, 20)
            assert summary.events_published == 1
            assert runtime.events_settings.thresholds.get(gunshot) == 0.42

    asyncio.run(main())
