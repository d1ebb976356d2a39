"""End to end with a real Mosquitto (a private broker on its own loopback port, see
tests/integration/mosquitto.py) and PostgreSQL (127.0.0.1:5432): nodes' EventMessages over
MQTT → hub (uvicorn) → a located incident via the API and SSE."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import aiomqtt
import httpx
import pytest
import uvicorn
from sqlalchemy import select

from ouie.config.hub import DatabaseSettings, HubSettings, MqttIngestSettings
from ouie.core.messages import topic_for
from ouie.core.timebase import utc_now
from ouie.hub import auth
from ouie.hub.api import create_app
from ouie.hub.db import Detection
from ouie.hub.service import Hub
from ouie.transport.base import encode
from tests.hub.helpers import (
    SITE,
    enu_of,
    events_for_source,
    pg_schema_url,
    register_sensors,
    sensor_grid,
    status_for,
)
from tests.integration.mosquitto import Mosquitto

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path / "broker")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.needs("mosquitto", "postgresql")
def test_mqtt_events_become_located_incident_in_postgresql(broker: Mosquitto) -> None:
    asyncio.run(_scenario(broker.port))


async def _scenario(broker_port: int) -> None:
    tag = uuid.uuid4().hex[:8]
    with pg_schema_url() as url:
        settings = HubSettings(
            database=DatabaseSettings(url=url, batch_wait_ms=10.0),
            mqtt=MqttIngestSettings(
                enabled=True,
                url=f"mqtt://127.0.0.1:{broker_port}",
                client_id=f"ouie-hub-test-{tag}",
                share_group=f"ouie-test-{tag}",
                session_expiry_s=30,
            ),
        )
        hub = Hub(settings)
        app = create_app(hub)
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        serving = asyncio.create_task(server.serve())
        try:
            for _ in range(200):
                if server.started and hub.mqtt is not None and hub.mqtt.connected.is_set():
                    break
                await asyncio.sleep(0.05)
            assert server.started and hub.mqtt is not None and hub.mqtt.connected.is_set()
            layout = sensor_grid(6)
            register_sensors(hub, layout)
            with hub.sessions() as session, session.begin():
                user = auth.create_user(session, "op", "password123", "operator", utc_now())
                token = auth.create_api_token(session, user, "t", utc_now())
            headers = {"Authorization": f"Bearer {token}"}
            base = f"http://127.0.0.1:{port}"

            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10.0) as client:
                first_event: asyncio.Future[dict[str, object]] = (
                    asyncio.get_running_loop().create_future()
                )

                async def listen() -> None:
                    async with client.stream("GET", "/api/v1/stream") as response:
                        assert response.status_code == 200
                        event = None
                        async for line in response.aiter_lines():
                            if line.startswith("event:"):
                                event = line[6:].strip()
                            elif line.startswith("data:") and event == "incident.created":
                                first_event.set_result(json.loads(line[5:]))
                                return

                listener = asyncio.create_task(listen())
                await asyncio.sleep(0.3)
                events = events_for_source(
                    layout, -15.0, 22.0, utc_now() - timedelta(seconds=1), jitter_s=0.0005
                )
                async with aiomqtt.Client(
                    "127.0.0.1", broker_port, identifier=f"node-sim-{tag}"
                ) as node:
                    for message in events:
                        await node.publish(
                            topic_for(SITE, message.sensor_id, "events"), encode(message), qos=1
                        )
                    await node.publish(
                        topic_for(SITE, "s1", "status"), encode(status_for("s1")), qos=1
                    )
                    # a redelivered duplicate must not count twice
                    await node.publish(topic_for(SITE, "s2", "events"), encode(events[1]), qos=1)
                created = await asyncio.wait_for(first_event, 10.0)
                assert created["label"] == "gunshot"
                await listener

                incident = None
                for _ in range(100):
                    listed = (await client.get("/api/v1/incidents")).json()["incidents"]
                    if listed and listed[0]["sensor_count"] == 6:
                        incident = listed[0]
                        break
                    await asyncio.sleep(0.1)
                assert incident is not None, "no incident with all six sensors"
                assert incident["method"] == "tdoa"
                east, north = enu_of(incident["lat"], incident["lon"])
                assert abs(east + 15.0) < 2.0 and abs(north - 22.0) < 2.0
                assert incident["ellipse_major_m"] < 10.0
                detail = (await client.get(f"/api/v1/incidents/{incident['id']}")).json()
                assert len(detail["detections"]) == 6
                sensor = (await client.get(f"/api/v1/sensors/{SITE}/s1")).json()
                assert sensor["health"] == "ok"
            with hub.sessions() as session:
                assert len(session.execute(select(Detection.id)).all()) == 6
            assert hub.audit_verify().ok
        finally:
            server.should_exit = True
            await serving
            hub.close()
