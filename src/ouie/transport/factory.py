"""Build the publisher a node's settings ask for (``publish.kind``)."""

from __future__ import annotations

from ouie.config.node import NodeSettings
from ouie.transport.base import ConfigHandler, OnsetRequestHandler, Publisher
from ouie.transport.inproc import InProcBus


async def create_publisher(
    settings: NodeSettings,
    on_config: ConfigHandler | None = None,
    bus: InProcBus | None = None,
    on_onset_request: OnsetRequestHandler | None = None,
) -> Publisher:
    """A started publisher. ``bus`` is required for ``inproc`` (one process, e.g. the demo)."""
    publish = settings.publish
    if publish.kind == "jsonl":
        from ouie.transport.jsonl import JsonlPublisher

        return JsonlPublisher(publish.jsonl_path)
    if publish.kind == "inproc":
        from ouie.transport.inproc import InProcPublisher

        if bus is None:
            raise ValueError("publish.kind 'inproc' needs an in-process bus (ouie demo)")
        inproc = InProcPublisher(
            bus, settings.site, settings.sensor_id, on_config, on_onset_request
        )
        await inproc.start()
        return inproc
    from ouie.transport.mqtt import MqttPublisher
    from ouie.transport.spool import Spool

    spool = Spool(publish.spool.path, max_events=publish.spool.max_events)
    mqtt = MqttPublisher(
        publish.mqtt, spool, settings.site, settings.sensor_id, on_config, on_onset_request
    )
    await mqtt.start()
    return mqtt
