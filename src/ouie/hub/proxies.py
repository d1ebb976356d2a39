"""Who is on the other end of a request, and did it come over HTTPS: the one place the hub
decides whether to believe ``X-Forwarded-For`` and ``X-Forwarded-Proto``.

The headers are believed only when the TCP peer is one of ``http.trusted_proxies``; nothing
is trusted by default, loopback included (issue 18: with uvicorn's default, any local
process could claim any address and dodge the per-address login lockout). ``ouie hub``
turns uvicorn's own proxy-header handling off so this module is the only one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.types import Scope

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ClientView:
    """The client as the hub believes it: its address and whether it used HTTPS."""

    address: str
    https: bool


def _ip(value: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address: IPAddress | None, proxies: Sequence[IPNetwork]) -> bool:
    return address is not None and any(address in network for network in proxies)


def _header(scope: Scope, name: bytes) -> str | None:
    values = [value for key, value in scope.get("headers", ()) if key.lower() == name]
    if not values:
        return None
    # several headers of one name are one comma-separated list (RFC 9110 §5.3)
    return ",".join(v.decode("latin-1") for v in values)


def client_view(scope: Scope, proxies: Sequence[IPNetwork]) -> ClientView:
    """The client of an ASGI ``scope`` given the trusted ``proxies``.

    ``X-Forwarded-For`` is walked from the right (the hop nearest the hub) past trusted
    proxies; the first address that is not one is the client. A malformed entry stops the
    walk at the last trusted hop, so garbage never becomes the client's address."""
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    https = scope.get("scheme") in {"https", "wss"}
    if not proxies or not _trusted(_ip(peer), proxies):
        return ClientView(peer, https)
    address = peer
    forwarded = _header(scope, b"x-forwarded-for")
    if forwarded:
        for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
            parsed = _ip(hop)
            if parsed is None:
                break
            address = str(parsed)
            if not _trusted(parsed, proxies):
                break
    proto = _header(scope, b"x-forwarded-proto")
    if proto:
        # the edge proxy (the first to add it) saw the client's scheme
        https = proto.split(",")[0].strip().lower() == "https"
    return ClientView(address, https)
