"""How ouie signs what it POSTs, and how a receiver checks it.

Headers: ``X-Ouie-Timestamp`` (Unix seconds) and
``X-Ouie-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``; binding the
timestamp lets receivers refuse replays (``verify_signature`` checks both).
``X-Ouie-Delivery`` carries the same id on every retry (receivers deduplicate on it) and
``X-Ouie-Event`` names the event.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Ouie-Signature"
TIMESTAMP_HEADER = "X-Ouie-Timestamp"
DELIVERY_HEADER = "X-Ouie-Delivery"
EVENT_HEADER = "X-Ouie-Event"


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """For receivers: the signature matches and the timestamp is fresh."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lowered[TIMESTAMP_HEADER.lower()])
        given = lowered[SIGNATURE_HEADER.lower()]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(given, sign(secret, timestamp, body))
