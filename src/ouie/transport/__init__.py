"""Transports between nodes and the hub: JSON lines, an in-process bus, and MQTT."""

from ouie.transport.base import ConfigHandler, Publisher, ResumesSequence

__all__ = ["ConfigHandler", "Publisher", "ResumesSequence"]
