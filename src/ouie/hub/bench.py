"""``ouie bench hub``: detections/s through Mosquitto into PostgreSQL and SQLite, and fusion
latency.

Workload: 40 sensors on a 600 m × 600 m grid; each simulated sound (random class and place)
is heard by its 5 nearest sensors, with onsets from the travel time, so every detection
goes through the full path — MQTT (QoS 1, shared subscription, ack after commit), schema
validation, dedupe, fusion into incidents with TDOA localisation, batched insert, commit.
A separate publisher process pushes the pre-built messages as fast as the broker takes them;
the rate is detections committed per second, from the first message received to the last
commit.

Fusion latency is measured per sound: the detections of one sound as one batch through
validation + fusion + localisation + commit, on the database just filled (p50/p99 of the
fusion step alone, and of the whole batch).

By default the bench starts a private Mosquitto (when the binary is installed) configured
the way docs/hub.md recommends for a hub (``max_inflight_messages`` and
``max_queued_messages`` raised): with Mosquitto's default of 20 in-flight QoS 1 messages per
client, acknowledging only after commit caps a single worker at ~20 messages per commit.
"""

from __future__ import annotations

import asyncio
import getpass
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ouie.config.hub import DatabaseSettings, HubSettings, MqttIngestSettings
from ouie.core.geo import ENUFrame, speed_of_sound
from ouie.core.labels import EVENT_LABELS
from ouie.core.messages import EventMessage, topic_for
from ouie.core.timebase import utc_now
from ouie.hub.ingest import Envelope
from ouie.hub.sensors import add_sensor
from ouie.hub.service import Hub

SITE = "bench"
ORIGIN = (45.764, 4.8357, 170.0)
PUBLISHER = r"""
import sys, time
import paho.mqtt.client as mqtt
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(path, "rb").read().split(b"\n")
client = mqtt.Client(
    mqtt.CallbackAPIVersion.VERSION2, client_id="ouie-bench-pub", protocol=mqtt.MQTTv5
)
client.max_inflight_messages_set(1000)
client.max_queued_messages_set(0)
client.connect(host, port)
client.loop_start()
infos = []
for line in lines:
    if not line:
        continue
    topic, payload = line.split(b"\t", 1)
    infos.append(client.publish(topic.decode(), payload, qos=1))
for info in infos:
    info.wait_for_publish(60)
client.loop_stop()
client.disconnect()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_broker(folder: Path) -> Iterator[str]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        raise RuntimeError("mosquitto is not installed; pass --mqtt-url")
    port = _free_port()
    config = folder / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
        "max_inflight_messages 2000\nmax_queued_messages 1000000\npersistence false\n"
        "log_type error\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("private mosquitto did not start")
            time.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def pg_schema(base_url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _layout() -> list[tuple[str, float, float]]:
    return [(f"b{i:02d}", -300.0 + 100.0 * (i % 7), -300.0 + 100.0 * (i // 7)) for i in range(42)]


def _register(hub: Hub, layout: list[tuple[str, float, float]]) -> None:
    frame = ENUFrame(*ORIGIN)
    now = utc_now()
    with hub.sessions() as session, session.begin():
        for sensor_id, east, north in layout:
            lat, lon, h = frame.to_geodetic(east, north, 4.0)
            add_sensor(
                session,
                site=SITE,
                sensor_id=sensor_id,
                lat=lat,
                lon=lon,
                height_m=h,
                mounting_height_m=4.0,
                actor="bench",
                now=now,
            )
    hub.reload_sensors()


def workload(n_detections: int, seed: int = 0, per_sound: int = 5) -> list[EventMessage]:
    rng = np.random.default_rng(seed)
    layout = _layout()
    positions = np.array([[e, n] for _, e, n in layout])
    c = speed_of_sound(15.0)
    start = utc_now() - timedelta(hours=12)
    messages: list[EventMessage] = []
    sequence = dict.fromkeys((s for s, _, _ in layout), 0)
    sound = 0
    while len(messages) < n_detections:
        source = rng.uniform(-280.0, 280.0, size=2)
        label = EVENT_LABELS[int(rng.integers(len(EVENT_LABELS)))]
        t0 = start + timedelta(seconds=1.0 * sound)
        nearest = np.argsort(np.linalg.norm(positions - source, axis=1))[:per_sound]
        for index in nearest:
            sensor_id = layout[int(index)][0]
            d = math.sqrt(float(np.sum((positions[index] - source) ** 2)) + 9.0)
            onset = t0 + timedelta(seconds=d / c + float(rng.normal(0, 0.001)))
            messages.append(
                EventMessage(
                    site=SITE,
                    sensor_id=sensor_id,
                    label=label,
                    onset=onset,
                    offset=onset + timedelta(seconds=0.4),
                    peak_score=0.8,
                    level_dbfs=-10.0 - 20 * math.log10(d),
                    model_id="bench",
                    sequence=sequence[sensor_id],
                )
            )
            sequence[sensor_id] += 1
        sound += 1
    return messages[:n_detections]


async def _ingest_run(
    url: str, mqtt_url: str, messages: list[EventMessage], log: Callable[[str], None]
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    settings = HubSettings(
        database=DatabaseSettings(url=url, batch_size=2000, batch_wait_ms=20.0),
        mqtt=MqttIngestSettings(
            enabled=True,
            url=mqtt_url,
            client_id=f"ouie-bench-{tag}",
            share_group=f"ouie-bench-{tag}",
            session_expiry_s=60,
        ),
    )
    hub = Hub(settings)
    await asyncio.to_thread(hub.prepare)
    _register(hub, _layout())
    await hub.start()
    assert hub.mqtt is not None
    for _ in range(200):
        if hub.mqtt.connected.is_set():
            break
        await asyncio.sleep(0.05)
    with tempfile.NamedTemporaryFile("wb", suffix=".tsv", delete=False) as handle:
        for message in messages:
            handle.write(
                topic_for(SITE, message.sensor_id, "events").encode()
                + b"\t"
                + message.model_dump_json().encode()
                + b"\n"
            )
        path = handle.name
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    n = len(messages)
    publisher = subprocess.Popen([sys.executable, "-c", PUBLISHER, host, port, path])
    first: float | None = None
    cpu_start = time.process_time()
    deadline = time.monotonic() + 600
    while hub.worker.finished < n and time.monotonic() < deadline:
        if first is None and hub.mqtt.received:
            first = time.perf_counter()
        await asyncio.sleep(0.002)
    end = time.perf_counter()
    cpu_s = time.process_time() - cpu_start
    publisher.wait(60)
    os.unlink(path)
    elapsed = end - (first or end)
    stages = dict(hub.worker.stage_seconds)
    batches = hub.worker.batches
    await hub.stop()
    rate = hub.worker.finished / elapsed if elapsed > 0 else 0.0
    log(
        f"  {hub.engine.dialect.name}: {hub.worker.finished} detections in {elapsed:.2f} s "
        f"= {rate:.0f}/s over {batches} batches"
    )
    return {
        "hub": hub,
        "rate": rate,
        "cpu_rate": hub.worker.finished / cpu_s if cpu_s > 0 else 0.0,
        "elapsed_s": elapsed,
        "batches": batches,
        "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
    }


def _fusion_latency(hub: Hub, sounds: int = 300) -> dict[str, float]:
    messages = workload(sounds * 5, seed=99)
    shift = timedelta(hours=6)
    fusion, batch = [], []
    for i in range(sounds):
        group = messages[i * 5 : (i + 1) * 5]
        envelopes = [
            Envelope(
                "bus",
                topic_for(SITE, m.sensor_id, "events"),
                m.model_copy(update={"onset": m.onset + shift, "offset": m.offset + shift})
                .model_dump_json()
                .encode(),
            )
            for m in group
        ]
        start = time.perf_counter()
        result = hub.processor.process(envelopes)
        batch.append(time.perf_counter() - start)
        fusion.append(result.fusion_s)
    f, b = np.array(fusion) * 1000, np.array(batch) * 1000
    return {
        "fusion_p50_ms": float(np.percentile(f, 50)),
        "fusion_p99_ms": float(np.percentile(f, 99)),
        "sound_batch_p50_ms": float(np.percentile(b, 50)),
        "sound_batch_p99_ms": float(np.percentile(b, 99)),
    }


def run_bench(
    detections: int = 20_000,
    mqtt_url: str = "auto",
    postgresql_url: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    pg_url = (
        postgresql_url
        or os.environ.get("OUIE_DATABASE_URL")
        or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    messages = workload(detections)
    results: dict[str, Any] = {
        "detections": detections,
        "sensors": len(_layout()),
        "detections_per_sound": 5,
        "cpu_count": os.cpu_count(),
        "workers": 1,
    }

    async def main(broker: str) -> None:
        results["broker"] = "private mosquitto" if mqtt_url == "auto" else broker
        with pg_schema(pg_url) as url:
            log("PostgreSQL run")
            pg = await _ingest_run(url, broker, messages, log)
            results["postgresql_detections_per_s"] = round(pg["rate"], 1)
            results["postgresql_stage_seconds"] = pg["stage_seconds"]
            results["postgresql_detections_per_hub_cpu_s"] = round(pg["cpu_rate"], 1)
            latency = await asyncio.to_thread(_fusion_latency, pg["hub"])
            results.update({k: round(v, 3) for k, v in latency.items()})
            pg["hub"].close()
        with tempfile.TemporaryDirectory() as folder:
            log("SQLite run")
            lite = await _ingest_run(f"sqlite:///{folder}/bench.sqlite3", broker, messages, log)
            results["sqlite_detections_per_s"] = round(lite["rate"], 1)
            results["sqlite_stage_seconds"] = lite["stage_seconds"]
            results["sqlite_detections_per_hub_cpu_s"] = round(lite["cpu_rate"], 1)
            latency = await asyncio.to_thread(_fusion_latency, lite["hub"])
            results["sqlite_fusion_p50_ms"] = round(latency["fusion_p50_ms"], 3)
            results["sqlite_fusion_p99_ms"] = round(latency["fusion_p99_ms"], 3)
            lite["hub"].close()

    results["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    if mqtt_url == "auto":
        with tempfile.TemporaryDirectory() as folder, private_broker(Path(folder)) as broker:
            asyncio.run(main(broker))
    else:
        asyncio.run(main(mqtt_url))
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return results


def localisation_sweep(
    jitters_ms: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0),
    sensor_counts: tuple[int, ...] = (3, 4, 6, 8),
    spreads_m: tuple[float, ...] = (150.0, 300.0),
    trials: int = 200,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Median / 90th-percentile horizontal error of TDOA fixes on seeded random geometry:
    ``n`` sensors (4 m up) uniformly in a square ``spread`` wide, the source (1 m up) in its
    inner 80 %, onsets with Gaussian jitter. Also the share of fixes whose 95 % circle
    (major semi-axis) holds the truth."""
    from ouie.hub.locate import Observation, locate

    c = speed_of_sound(15.0)
    rows = []
    for spread in spreads_m:
        for n in sensor_counts:
            for jitter_ms in jitters_ms:
                rng = np.random.default_rng(seed)
                errors, covered, tdoa = [], 0, 0
                sigma = max(jitter_ms / 1000.0, 1e-4)
                for _ in range(trials):
                    half = spread / 2
                    sensors = rng.uniform(-half, half, size=(n, 2))
                    source = rng.uniform(-0.8 * half, 0.8 * half, size=2)
                    obs = []
                    for sx, sy in sensors:
                        d = math.sqrt((sx - source[0]) ** 2 + (sy - source[1]) ** 2 + 9.0)
                        onset = d / c + rng.normal(0.0, jitter_ms / 1000.0)
                        obs.append(Observation(sx, sy, 4.0, onset, -d))
                    fix = locate(obs, c, onset_sigma_s=sigma, source_up=1.0)
                    error = math.hypot(fix.east - source[0], fix.north - source[1])
                    errors.append(error)
                    covered += error <= fix.radius_m
                    tdoa += fix.method == "tdoa"
                rows.append(
                    {
                        "spread_m": spread,
                        "sensors": n,
                        "jitter_ms": jitter_ms,
                        "median_error_m": round(float(np.median(errors)), 2),
                        "p90_error_m": round(float(np.percentile(errors, 90)), 2),
                        "coverage_95": round(covered / trials, 3),
                        "tdoa_share": round(tdoa / trials, 3),
                    }
                )
    return rows
