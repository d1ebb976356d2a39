"""Operator console and public transparency page, served by the hub (``mount_web``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ouie.hub.service import Hub

log = logging.getLogger(__name__)


def mount_web(app: FastAPI, hub: Hub) -> bool:
    """Add the console (``/console``), the public page (``/public``) and their static files
    to the hub's app. Returns False (and logs why) when the ``web`` extra is not installed
    or ``web.enabled`` is false."""
    try:
        from ouie.web.routes import mount
    except ImportError as exc:  # jinja2 / python-multipart missing: API-only hub
        log.warning("console not served: %s (pip install 'ouie[web]')", exc)
        return False
    return mount(app, hub)
