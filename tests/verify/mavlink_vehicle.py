"""The MAVLink vehicle simulator the tests fly (implementation in ``ouie.verify.peers`` so
that ``ouie bench verify`` and ``ouie demo`` can run it too)."""

from ouie.verify.peers.mavlink_vehicle import MavlinkVehicle, ReceivedItem

__all__ = ["MavlinkVehicle", "ReceivedItem"]
