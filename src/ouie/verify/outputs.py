"""The output plugins, by ``type``, and the fan-out that feeds them.

To add a plugin: write its config model (``type: Literal["name"]``) in
``ouie.config.outputs`` and add it to ``OutputConfig`` there; write one module here with an
``OutputAction`` subclass (``DeliveringAction`` for one that POSTs) and ``build``; add the
module to ``PLUGINS``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any

from ouie.config.outputs import OutputConfig
from ouie.verify.cctv import CueResult
from ouie.verify.incident import IncidentNotice, IncidentRef
from ouie.verify.plugin import OutputAction, OutputContext

log = logging.getLogger(__name__)

PLUGINS: dict[str, str] = {
    "webhook": "ouie.verify.webhook",
    "cap": "ouie.verify.cap",
    "mqtt": "ouie.verify.mqtt",
    "vms_webhook": "ouie.verify.vms",
}


def build_output(config: OutputConfig, ctx: OutputContext) -> OutputAction:
    module = importlib.import_module(PLUGINS[config.type])
    action: OutputAction = module.build(config, ctx)
    return action


class Outputs:
    """Every configured output; one failing output never stops the others."""

    def __init__(self, configs: list[OutputConfig], ctx: OutputContext) -> None:
        ids = [c.id for c in configs]
        if len(ids) != len(set(ids)):
            raise ValueError("output ids must be unique")
        self.ctx = ctx
        self.actions = [build_output(c, ctx) for c in configs]

    def get(self, output_id: str) -> OutputAction:
        for action in self.actions:
            if action.id == output_id:
                return action
        raise KeyError(output_id)

    async def start(self) -> None:
        for action in self.actions:
            await action.start()

    async def _each(self, name: str, *args: Any) -> None:
        results = await asyncio.gather(
            *(getattr(a, name)(*args) for a in self.actions), return_exceptions=True
        )
        for action, result in zip(self.actions, results, strict=True):
            if isinstance(result, BaseException):
                log.error("output %s: %s failed: %s", action.id, name, type(result).__name__)

    async def on_incident(self, notice: IncidentNotice) -> None:
        await self._each("on_incident", notice)

    async def on_cue(self, incident: IncidentRef, cue: CueResult, actor: str) -> None:
        await self._each("on_cue", incident, cue, actor)

    async def drain(self) -> None:
        await self._each("drain")

    async def close(self) -> None:
        await self._each("close")
