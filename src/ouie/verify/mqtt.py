"""MQTT incident topic for integrators (plugin ``mqtt``): ``ouie/v1/<site>/incidents``.

Each incident change is published as JSON, QoS 1, not retained::

    {"schema_version": 1, "kind": "incident", "change": "created", "incident": {…}}

A background task keeps one connection (aiomqtt, MQTT 3.1.1, persistent session) and
publishes queued messages in order; while the broker is away messages wait in a bounded
queue (oldest dropped beyond ``queue_size``, counted in ``dropped``) and the connection is
retried with exponential backoff. ``drain`` waits until the queue is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from ouie.config.outputs import MqttOutput
from ouie.verify.events import AlertPublished
from ouie.verify.incident import IncidentNotice
from ouie.verify.plugin import OutputAction, OutputContext

log = logging.getLogger(__name__)


def incidents_topic(site: str, prefix: str = "ouie/v1") -> str:
    return f"{prefix}/{site}/incidents"


class MqttAction(OutputAction):
    def __init__(self, config: MqttOutput, ctx: OutputContext) -> None:
        from ouie.transport.mqtt import parse_broker_url

        self.config = config
        self.id = config.id
        self.ctx = ctx
        self.broker = parse_broker_url(config.url)
        self.password = ctx.decrypt_optional(config.id, config.password_enc)
        self.queue: asyncio.Queue[tuple[str, bytes, str]] = asyncio.Queue()
        self.published = 0
        self.dropped = 0
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retry: tuple[str, bytes, str] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ouie-mqtt-{self.id}")

    async def on_incident(self, notice: IncidentNotice) -> None:
        await self.start()
        topic = incidents_topic(notice.incident.site, self.config.topic_prefix)
        body = json.dumps(
            {
                "schema_version": 1,
                "kind": "incident",
                "change": notice.change,
                "incident": notice.incident.model_dump(mode="json"),
            },
            separators=(",", ":"),
        ).encode("utf-8")
        if self.queue.qsize() >= self.config.queue_size:
            self.queue.get_nowait()
            self.queue.task_done()
            self.dropped += 1
        self.queue.put_nowait((topic, body, notice.incident.id))

    async def _run(self) -> None:
        import aiomqtt

        backoff = 0.2
        while True:
            try:
                async with aiomqtt.Client(
                    self.broker.host,
                    self.broker.port,
                    username=self.config.username,
                    password=None if self.password is None else self.password.get_secret_value(),
                    identifier=self.config.client_id,
                    protocol=aiomqtt.ProtocolVersion.V311,
                    clean_session=False,
                    tls_params=aiomqtt.TLSParameters() if self.broker.tls else None,
                ) as client:
                    self.connected.set()
                    backoff = 0.2
                    while True:
                        # A message whose publish failed is retried first after reconnecting.
                        item = self._retry or await self.queue.get()
                        self._retry = item
                        topic, body, incident_id = item
                        await client.publish(
                            topic, body, qos=self.config.qos, retain=self.config.retain
                        )
                        self._retry = None
                        self.published += 1
                        self.queue.task_done()
                        self.ctx.audit(
                            AlertPublished(
                                incident_id=incident_id,
                                output_id=self.id,
                                channel="mqtt",
                                target=topic,
                            )
                        )
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                log.warning("MQTT output %s: %s; retrying in %.1f s", self.id, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(self.config.reconnect_max_s, backoff * 2.0)

    async def drain(self) -> None:
        if self._task is not None:
            await self.queue.join()

    async def close(self) -> None:
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), 5.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def build(config: MqttOutput, ctx: OutputContext) -> MqttAction:
    return MqttAction(config, ctx)
