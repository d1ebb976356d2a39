"""The hub's HTTP app: the API routers (``ouie.hub.routers``) composed around one ``Hub``.

The routers are imported at module level, so a router that fails to import fails start-up
instead of silently leaving its routes out. Two middlewares wrap every request (issue 18):
``gate.RequestGate`` (body size limit, authentication before the body is read) and
``headers.SecurityHeaders`` (CSP, framing, nosniff, referrer, HSTS behind TLS); 422 answers
never repeat the input (``gate.validation_error_handler``). The operator console is not part
of this app: ``ouie.web.app.create_hub_app`` adds it (the hub does not know the console
exists).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError

from ouie.hub import auth, verification
from ouie.hub.gate import RequestGate, validation_error_handler
from ouie.hub.headers import SecurityHeaders
from ouie.hub.routers import (
    admin,
    audit,
    audit_anchor,
    detections,
    health,
    incidents,
    ingest,
    metrics,
    public,
    sensors,
    stats,
    user_changes,
    users,
)
from ouie.hub.routers import verification as verification_routes
from ouie.hub.routers.deps import ACCESS_KEY, CSRF_HEADER, SESSION_COOKIE
from ouie.hub.service import Hub

__all__ = ["ACCESS_KEY", "CSRF_HEADER", "ROUTERS", "SESSION_COOKIE", "create_app"]

#: every router of the API, in the order the OpenAPI document lists them
ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    public.router,
    audit_anchor.router,
    users.router,
    user_changes.router,
    incidents.router,
    detections.router,
    sensors.router,
    stats.router,
    audit.router,
    admin.router,
    ingest.router,
    verification_routes.router,
    metrics.router,
)


def _lifespan(hub: Hub, manage_hub: bool) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        verifying = False
        if manage_hub:
            await hub.start()
            verifying = await verification.start_configured(hub)
        try:
            yield
        finally:
            if manage_hub:
                if verifying:
                    await verification.detach(hub)
                await hub.stop()

    return lifespan


def create_app(hub: Hub, manage_hub: bool = True) -> FastAPI:
    """The API app for ``hub``; with ``manage_hub`` its lifespan starts/stops the hub (and the
    verification service of the hub's ``verify:`` section)."""
    app = FastAPI(
        title="ouie hub",
        version="1",
        lifespan=_lifespan(hub, manage_hub),
        description="Acoustic incidents: ingest, fusion, localisation, operators' API.",
    )
    app.state.hub = hub
    app.state.login_limiter = auth.LoginLimiter(
        hub.settings.auth.login_attempts,
        hub.settings.auth.login_window_s,
        hub.settings.auth.login_attempts_per_ip,
    )
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    # the last added runs first: headers go on every answer, the gate's refusals included
    app.add_middleware(RequestGate, hub=hub, routes=app.router.routes)
    app.add_middleware(SecurityHeaders, settings=hub.settings)
    for router in ROUTERS:
        # The routes go into the app's own list: this FastAPI's ``include_router`` nests a
        # router lazily, and the access-rule tests and the console's route lookup walk
        # ``app.routes`` (each router already carries its prefix, and no router-level
        # options would be lost).
        app.router.routes.extend(router.routes)
    return app
