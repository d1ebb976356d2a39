"""Security headers on every response of the hub (API, console, public page; issue 18).

- ``Content-Security-Policy``: scripts, styles, images and connections from the hub itself
  only (plus the configured map tile server's images). The console has no inline script
  (its strings travel as ``application/json``, which is never executed); inline *style
  attributes* (level meters, timeline ticks) need ``'unsafe-inline'`` for styles, which
  cannot run code. ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` stop
  clickjacking of the approve/dispatch buttons.
- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin`` (incident URLs never
  leak to a tile server), ``Permissions-Policy`` (the console never needs a microphone,
  camera or location), ``Cross-Origin-Opener-Policy: same-origin``.
- ``Strict-Transport-Security`` only on responses to HTTPS requests, as seen directly or
  through a trusted proxy (``ouie.hub.proxies``): sent over plain HTTP it would be ignored
  anyway, and on a loopback development hub it must not pin HTTPS.

A header a route set itself is kept. FastAPI's ``/docs`` page loads Swagger UI from its
CDN with an inline script, so those few paths get a policy that allows exactly that.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ouie.config.hub import HubSettings
from ouie.hub.proxies import client_view

DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src blob:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def tile_source(tile_url: str | None) -> str | None:
    """The CSP source for the map tiles' server (``https://*.tile.example.org`` for a
    ``{s}`` subdomain template); None when no (usable) tile URL is configured."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url.replace("{s}", "x-sub"))
    host = parts.hostname or ""
    if parts.scheme not in {"http", "https"} or not host:
        return None
    if not all(c.isalnum() or c in ".-" for c in host):
        return None  # nothing that could end the directive or add another
    host = host.replace("x-sub", "*")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def content_security_policy(settings: HubSettings) -> str:
    images = ["'self'", "data:", "blob:"]
    tiles = tile_source(settings.web.tile_url)
    if tiles:
        images.append(tiles)
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src " + " ".join(images),
            "connect-src 'self'",
            "font-src 'self'",
            "media-src 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeaders:
    """Adds the headers above to every HTTP response (a plain ASGI middleware, so streamed
    responses such as the live SSE stream are never buffered)."""

    def __init__(self, app: ASGIApp, *, settings: HubSettings) -> None:
        self.app = app
        self.proxies = list(settings.http.trusted_proxies)
        self.hsts_max_age_s = settings.http.hsts_max_age_s
        self.fixed: tuple[tuple[str, str], ...] = (
            ("Content-Security-Policy", content_security_policy(settings)),
            ("X-Frame-Options", "DENY"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "same-origin"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Permissions-Policy", "microphone=(), camera=(), geolocation=(), payment=()"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = client_view(scope, self.proxies).https
        docs = scope.get("path") in DOCS_PATHS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.fixed:
                    if docs and name == "Content-Security-Policy":
                        value = _DOCS_CSP
                    headers.setdefault(name, value)
                if https and self.hsts_max_age_s > 0:
                    headers.setdefault(
                        "Strict-Transport-Security", f"max-age={self.hsts_max_age_s}"
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)
