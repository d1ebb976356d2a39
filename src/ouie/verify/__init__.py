"""Alarm verification: camera cueing (ONVIF), drone dispatch (MAVLink) with supervisor
approval, and outbound alerts (webhooks, CAP 1.2, MQTT). See docs/verification.md.

The hub builds one ``ouie.verify.service.VerificationService``; modules import their
protocol libraries lazily, so importing this package stays light.
"""
