"""The audit record every layer can describe and the hub's hash-chained log stores.

It lives in core, not beside the log (``ouie.hub.audit``), so that the libraries the hub
composes (``ouie.verify``) can say what they did in the log's own terms without importing
the hub.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AuditEvent:
    """One thing that happened, as the audit log records it (never audio or content)."""

    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any] = field(default_factory=dict)
