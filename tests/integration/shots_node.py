"""A node that fires numbered shots through the real MQTT publisher and spool.

Run as ``python -m tests.integration.shots_node PLAN.json`` by ``test_no_loss.py``, so a test
can SIGKILL it mid-spool and start it again. It publishes shot ``i`` (an ``EventMessage``
with ``sequence == i``) every ``interval_s`` from the spool's next sequence number up to
``shots``, sends a heartbeat every ``heartbeat_s`` (as ``ouie node`` does, only faster), and
prints one line per step on stdout: ``shot <i>`` once the shot is in the spool, ``done``
once the hub confirmed every message (the spool is empty), ``unconfirmed <n>`` if that did
not happen within ``wait_s``. Exit status 0 only after ``done``. With ``tls`` it connects
with the sensor's certificate (``mqtts://``), with ``signing_key`` it signs every event and
heartbeat, as ``ouie node`` does with its ``identity`` settings.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Literal

from ouie.config.node import MqttSettings
from ouie.config.security import TlsSettings
from ouie.core.labels import EventLabel
from ouie.core.messages import EventMessage, LevelStats, StatusMessage
from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now
from ouie.transport.mqtt import MqttPublisher
from ouie.transport.signing import SigningKey
from ouie.transport.spool import Spool


class ShotsPlan(StrictModel):
    broker_url: str
    spool: Path
    site: str
    sensor_id: str
    shots: int = 21
    interval_s: float = 0.15
    heartbeat_s: float = 0.5
    resend_after_s: float = 1.0
    keep_until: Literal["stored", "puback"] = "stored"
    wait_s: float = 90.0
    tls: TlsSettings | None = None
    signing_key: Path | None = None


def shot(plan: ShotsPlan, sequence: int) -> EventMessage:
    onset = utc_now() - timedelta(milliseconds=300)
    return EventMessage(
        site=plan.site,
        sensor_id=plan.sensor_id,
        label=EventLabel.GUNSHOT,
        onset=onset,
        offset=onset + timedelta(milliseconds=200),
        peak_score=0.95,
        level_dbfs=-6.0,
        model_id="test-shots",
        sequence=sequence,
    )


def heartbeat(plan: ShotsPlan, started: float, spooled: int) -> StatusMessage:
    return StatusMessage(
        site=plan.site,
        sensor_id=plan.sensor_id,
        sent_at=utc_now(),
        uptime_s=time.monotonic() - started,
        cpu_percent=1.0,
        rss_mb=50.0,
        level=LevelStats(mean_dbfs=-50.0, max_dbfs=-6.0, clipped_fraction=0.0),
        clock_source="system",
        clock_offset_ms=0.0,
        model_id="test-shots",
        events_emitted=0,
        speech_suppressions=0,
        dropped_chunks=0,
        invalid_samples=0,
        spooled_events=spooled,
    )


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run(plan: ShotsPlan) -> int:
    started = time.monotonic()
    publisher = MqttPublisher(
        MqttSettings(
            url=plan.broker_url,
            tls=plan.tls,
            keepalive_s=5,
            keep_until=plan.keep_until,
            resend_after_s=plan.resend_after_s,
        ),
        Spool(plan.spool),
        plan.site,
        plan.sensor_id,
        reconnect_min_s=0.05,
        reconnect_max_s=0.5,
        close_timeout_s=1.0,
    )
    signer = SigningKey.load(plan.signing_key) if plan.signing_key is not None else None
    await publisher.start()

    async def heartbeats() -> None:
        while True:
            await asyncio.sleep(plan.heartbeat_s)
            status = heartbeat(plan, started, publisher.spooled_events)
            await publisher.publish_status(
                status if signer is None else signer.sign_message(status)
            )

    beating = asyncio.create_task(heartbeats())
    for sequence in range(publisher.next_sequence(), plan.shots):
        event = shot(plan, sequence)
        await publisher.publish_event(event if signer is None else signer.sign_message(event))
        say(f"shot {sequence}")
        await asyncio.sleep(plan.interval_s)
    deadline = time.monotonic() + plan.wait_s
    while publisher.spooled_events and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    beating.cancel()
    confirmed = await publisher.flush(max(0.0, deadline - time.monotonic()))
    left = len(publisher.spool)
    await publisher.close()
    say("done" if confirmed else f"unconfirmed {left}")
    return 0 if confirmed else 1


def main() -> None:
    plan = ShotsPlan.model_validate_json(Path(sys.argv[1]).read_text(encoding="utf-8"))
    sys.exit(asyncio.run(run(plan)))


if __name__ == "__main__":
    main()
