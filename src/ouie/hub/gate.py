"""What a request must pass before the hub reads its body: a size limit and, for routes that
need credentials, authentication (issue 18, finding 6).

FastAPI reads and parses a route's JSON body before it runs the route's dependencies, the
access guard included, and it has no size limit: 60 MB posted to ``/ingest`` without a
token were parsed (seconds of a blocked event loop, +220 MB) before the 401. ``RequestGate``
is a plain ASGI middleware in front of the whole app that, in this order:

1. refuses a declared ``Content-Length`` above ``http.max_body_bytes`` with 413;
2. for a request that may carry a body (any method but GET/HEAD/OPTIONS) to a route whose
   access rule is not ``public``, runs that route's own guard (``deps.Guard``) on the
   headers alone and answers its 401/403 without reading a byte of the body;
3. reads the body itself, counting bytes, and answers 413 as soon as the count passes the
   limit (chunked uploads have no Content-Length to check), then hands the buffered body
   to the app.

The 413 never repeats any of the body. ``validation_error_handler`` does the same for 422s:
FastAPI's default echoes each invalid ``input`` (a 200 MB "password" came back whole).
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ouie.hub.auth import Perm
from ouie.hub.routers.deps import ACCESS_KEY, SAFE_METHODS, Access, Guard
from ouie.hub.service import Hub


class BodyTooLarge(Exception):
    """The body passed the limit while it was being read."""


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length header as a number; None when absent; -1 when malformed."""
    for key, value in scope.get("headers", ()):
        if key.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


def _too_large(limit: int) -> JSONResponse:
    # the connection is closed: the rest of an oversized upload is never read
    return JSONResponse(
        {"detail": f"request body larger than {limit} bytes"}, 413, {"Connection": "close"}
    )


def _access(rule: str) -> Access:
    """The route's ``x-ouie-access`` marker (``access()`` wrote it) back as its rule."""
    if rule == "authenticated":
        return "authenticated"
    if rule == "sensor":
        return "sensor"
    return Perm(rule)


class RequestGate:
    """Size limit and authentication before the body is read (see the module docstring).

    ``routes``: the app's route list, read at each request so routes added after the
    middleware (the console's) are covered too."""

    def __init__(self, app: ASGIApp, *, hub: Hub, routes: list[BaseRoute]) -> None:
        self.app = app
        self.hub = hub
        self.routes = routes

    @property
    def limit(self) -> int:
        return self.hub.settings.http.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        declared = _declared_length(scope)
        if declared is not None and declared < 0:
            await JSONResponse({"detail": "malformed Content-Length"}, 400)(scope, receive, send)
            return
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS or declared:
            refusal = await self._authenticate(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        try:
            first = await self._read_body(receive, limit)
        except BodyTooLarge:
            await _too_large(limit)(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return first
            return await receive()  # later calls: the client's disconnect (SSE streams)

        await self.app(scope, replay, send)

    @staticmethod
    async def _read_body(receive: Receive, limit: int) -> Message:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message  # the client left while sending: the app sees it go
            body: bytes = message.get("body", b"")
            size += len(body)
            if size > limit:
                raise BodyTooLarge()
            chunks.append(body)
            if not message.get("more_body", False):
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    def _access_rule(self, scope: Scope) -> str | None:
        for route in list(self.routes):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                extra: dict[str, Any] = getattr(route, "openapi_extra", None) or {}
                rule = extra.get(ACCESS_KEY)
                return str(rule) if rule is not None else None
        return None

    async def _authenticate(self, scope: Scope) -> JSONResponse | None:
        """The route's own guard, run on the headers; its refusal, or None to go on."""
        rule = self._access_rule(scope)
        if rule is None or rule == "public":
            return None
        guard = Guard(_access(rule))
        try:
            # the guard reads the database (sessions, tokens): off the event loop
            await run_in_threadpool(guard, Request(scope), self.hub)
        except HTTPException as exc:
            return JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)
        return None


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 with where and why, never the value: FastAPI's default repeats each invalid
    ``input``, which for a login is the password, and for a huge body the whole body."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [
        {"type": str(error.get("type", "")), "loc": list(error.get("loc", ())), "msg": error["msg"]}
        for error in errors
    ]
    return JSONResponse({"detail": detail}, 422)
