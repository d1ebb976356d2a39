"""Operator console and public transparency page, served by the hub (``mount_web``)."""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ouie.hub.service import Hub

log = logging.getLogger(__name__)

#: what the console needs of the ``web`` extra to import; without it the hub serves its API only
EXTRA_MODULES = ("jinja2",)


def mount_web(app: FastAPI, hub: Hub) -> bool:
    """Add the console (``/console``), the public page (``/public``) and their static files
    to the hub's app. Returns False (and logs why) when the ``web`` extra is not installed
    or ``web.enabled`` is false. Any other import error is a bug and fails start-up."""
    missing = [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        log.warning("console not served: %s missing (pip install 'ouie[web]')", ", ".join(missing))
        return False
    # imported here, not above: importing ``ouie.web`` (e.g. for its settings) must work
    # without the extra
    from ouie.web.routes import mount

    return mount(app, hub)
