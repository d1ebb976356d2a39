"""The interface of an output plugin and what every plugin is given.

An output plugin is one module with a pydantic config model whose ``type`` is a
``Literal`` naming it, an ``OutputAction`` subclass and a ``build(config, ctx)`` function;
``ouie.verify.outputs.PLUGINS`` maps each ``type`` to its module. Actions receive incident
changes (``on_incident``) and camera cues (``on_cue``), report what they did through
``ctx.audit`` and must never block the caller: slow network work runs in tasks that
``drain`` waits for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from pydantic import SecretStr

from ouie.verify.credentials import SecretBox, SecretKeyError
from ouie.verify.dead_letters import DeadLetterStore, MemoryDeadLetters
from ouie.verify.events import AuditSink, discard
from ouie.verify.incident import IncidentNotice, IncidentRef

if TYPE_CHECKING:
    from ouie.verify.cctv import CueResult


def _http_client() -> httpx.AsyncClient:
    # trust_env=False: integrations are configured explicitly, never via proxy variables.
    return httpx.AsyncClient(trust_env=False, follow_redirects=False)


@dataclass
class OutputContext:
    secrets: SecretBox | None = None
    audit: AuditSink = discard
    dead_letters: DeadLetterStore = field(default_factory=MemoryDeadLetters)
    http_client: Callable[[], httpx.AsyncClient] = _http_client
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def require_secrets(self, owner: str) -> SecretBox:
        if self.secrets is None:
            raise SecretKeyError(f"{owner} has an encrypted secret but no secret key is configured")
        return self.secrets

    def decrypt_optional(self, owner: str, token: str | None) -> SecretStr | None:
        """``owner``'s secret in clear (kept in a ``SecretStr``), or None when it has none."""
        return None if token is None else self.require_secrets(owner).decrypt(token)


class OutputAction:
    """Base of output plugins; every hook is optional."""

    id: str = ""

    async def start(self) -> None:
        return None

    async def on_incident(self, notice: IncidentNotice) -> None:
        return None

    async def on_cue(self, incident: IncidentRef, cue: CueResult, actor: str) -> None:
        return None

    async def drain(self) -> None:
        return None

    async def close(self) -> None:
        return None
