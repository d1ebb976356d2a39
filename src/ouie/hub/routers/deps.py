"""What the hub's routes depend on, declared once: the ``Hub``, who is asking, the access rule.

The app keeps the ``Hub`` and the login limiter in ``app.state`` (``create_app`` puts them
there), so routers are plain module-level ``APIRouter`` objects rather than closures over a
hub. ``access(rule)`` gives a route its one guard and its ``x-ouie-access`` marker together, so
the two cannot disagree. The guard stores the caller on ``request.state``; handlers read it
with the ``Caller`` and ``SensorCaller`` dependencies.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypedDict

from fastapi import Depends, HTTPException, Request, params
from pydantic import AfterValidator

from ouie.core.timebase import utc_now
from ouie.hub import auth
from ouie.hub.auth import Perm, Principal
from ouie.hub.proxies import ClientView, client_view
from ouie.hub.registry import SensorInfo
from ouie.hub.service import Hub

API_PREFIX = "/api/v1"
SESSION_COOKIE = "ouie_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ACCESS_KEY = "x-ouie-access"

Access = Perm | Literal["public", "authenticated", "sensor"]


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def get_login_limiter(request: Request) -> auth.LoginLimiter:
    limiter: auth.LoginLimiter = request.app.state.login_limiter
    return limiter


HubDep = Annotated[Hub, Depends(get_hub)]
LimiterDep = Annotated[auth.LoginLimiter, Depends(get_login_limiter)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    return header[7:].strip() or None


def identify(hub: Hub, request: Request) -> Principal | None:
    """Who sent ``request`` (bearer API token, else the session cookie); the console's pages
    ask the same question through this function."""
    with hub.sessions() as session, session.begin():
        return auth.identify(
            session,
            bearer=bearer_token(request),
            session_token=request.cookies.get(SESSION_COOKIE),
            now=utc_now(),
        )


def _sensor(hub: Hub, request: Request) -> SensorInfo:
    bearer = bearer_token(request)
    sensor = hub.registry.by_token(bearer) if bearer else None
    if sensor is None and bearer:
        hub.reload_sensors()  # a sensor added since the registry was loaded
        sensor = hub.registry.by_token(bearer)
    if sensor is None:
        raise HTTPException(401, "a sensor token is required", {"WWW-Authenticate": "Bearer"})
    return sensor


class Guard:
    """One route's access rule as a dependency: 401 without credentials, 403 without the
    permission or (for cookie sessions) without the CSRF token on a state change."""

    def __init__(self, rule: Access) -> None:
        self.rule = rule

    def __call__(self, request: Request, hub: HubDep) -> None:
        if self.rule == "public":
            return
        if self.rule == "sensor":
            request.state.sensor = _sensor(hub, request)
            return
        found = identify(hub, request)
        if found is None:
            raise HTTPException(401, "authentication required", {"WWW-Authenticate": "Bearer"})
        if found.via == "session" and request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not found.csrf_token or not secrets.compare_digest(sent, found.csrf_token):
                raise HTTPException(403, "missing or wrong CSRF token")
        if self.rule != "authenticated" and not found.can(Perm(self.rule)):
            raise HTTPException(403, f"role {found.role} lacks {self.rule}")
        request.state.principal = found


class RouteAccess(TypedDict):
    dependencies: list[params.Depends]
    openapi_extra: dict[str, Any]


def access(rule: Access) -> RouteAccess:
    """The keyword arguments that give a route its access rule: ``**access(Perm.X)``."""
    return {"dependencies": [Depends(Guard(rule))], "openapi_extra": {ACCESS_KEY: str(rule)}}


def as_utc(value: datetime) -> datetime:
    """A query's time: naive values are taken as UTC (the database compares aware times)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


#: the times a query may name; beyond them, converting to UTC or adding a day overflows
#: (``since=0001-01-01T00:00:00+01:00`` was a 500, issue 18)
EARLIEST_QUERY_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_QUERY_TIME = datetime(9000, 1, 1, tzinfo=UTC)


def _query_time(value: datetime) -> datetime:
    try:
        utc = as_utc(value).astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None
    if not EARLIEST_QUERY_TIME <= utc <= LATEST_QUERY_TIME:
        raise ValueError("time out of range (1970-01-01 to 9000-01-01)")
    return utc


#: a time in a query string, in UTC and in range (422 otherwise, never a 500)
QueryTime = Annotated[datetime, AfterValidator(_query_time)]


def client_of(hub: Hub, request: Request) -> ClientView:
    """The caller's address and scheme, believing forwarded headers only from the
    configured proxies (``ouie.hub.proxies``)."""
    return client_view(request.scope, hub.settings.http.trusted_proxies)


def current_principal(request: Request) -> Principal:
    found = getattr(request.state, "principal", None)
    if not isinstance(found, Principal):  # a route that reads the caller must guard for one
        raise RuntimeError("route reads the caller but has no authenticating access rule")
    return found


def current_sensor(request: Request) -> SensorInfo:
    found = getattr(request.state, "sensor", None)
    if not isinstance(found, SensorInfo):
        raise RuntimeError("route reads the sensor but its access rule is not 'sensor'")
    return found


Caller = Annotated[Principal, Depends(current_principal)]
SensorCaller = Annotated[SensorInfo, Depends(current_sensor)]
