"""Loopback protocol peers: an ONVIF PTZ camera, a MAVLink vehicle and an HTTP receiver.

They speak the real protocols on 127.0.0.1 only, for the tests, ``ouie bench verify`` and
``ouie demo``; nothing here is used against real equipment.
"""
