"""The hub's whole HTTP app: the API (``ouie.hub.api``) plus the operator console.

This is where the two are composed, so that the hub never imports the console: ``web`` sits
above ``hub`` in the layers and may use it, not the other way round.
"""

from __future__ import annotations

from fastapi import FastAPI

from ouie.hub.api import create_app
from ouie.hub.service import Hub
from ouie.web import mount_web


def create_hub_app(hub: Hub, manage_hub: bool = True) -> FastAPI:
    """The API app for ``hub`` with the console and the public page mounted (when the
    ``web`` extra is installed and ``web.enabled`` is true)."""
    app = create_app(hub, manage_hub)
    mount_web(app, hub)
    return app
