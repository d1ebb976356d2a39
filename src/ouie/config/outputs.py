"""Settings of the outbound outputs (``verify.outputs``): one model per plugin, chosen by
``type`` (``OutputConfig``).

The plugins themselves (``ouie.verify.webhook``, ``cap``, ``mqtt``, ``vms``) import their
model from here; config sits below verify in the layers, so the settings tree can be read
(``ouie check``) without the plugins' protocol code.
"""

from __future__ import annotations

import random
from typing import Annotated, Literal

from pydantic import Field

from ouie.config.secrets import EncryptedSecret
from ouie.core.labels import EventLabel
from ouie.core.model_base import StrictModel

#: The kinds of incident change an output is told about (``verify.incident.IncidentNotice``).
IncidentChange = Literal["created", "updated", "state_changed", "closed"]


class RetryPolicy(StrictModel):
    max_attempts: int = Field(default=6, ge=1, le=50)
    initial_s: float = Field(default=1.0, ge=0.0)
    factor: float = Field(default=2.0, ge=1.0)
    max_s: float = Field(default=300.0, ge=0.0)
    jitter: float = Field(default=0.1, ge=0.0, le=1.0, description="± fraction of each delay")
    timeout_s: float = Field(default=5.0, gt=0.0, le=120.0)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_s, self.initial_s * self.factor ** (attempt - 1))
        if self.jitter and base > 0:
            base *= 1.0 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base)


def _default_changes() -> list[IncidentChange]:
    return ["created", "state_changed", "closed"]


class WebhookFilter(StrictModel):
    labels: list[EventLabel] = Field(default_factory=list, description="empty: all")
    sites: list[str] = Field(default_factory=list, description="empty: all")
    changes: list[IncidentChange] = Field(default_factory=_default_changes)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)


class WebhookOutput(StrictModel):
    type: Literal["webhook"] = "webhook"
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    url: str = Field(pattern=r"^https?://")
    secret_enc: EncryptedSecret | None = Field(
        default=None, description="Fernet token of the HMAC secret"
    )
    filter: WebhookFilter = Field(default_factory=WebhookFilter)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    headers: dict[str, str] = Field(default_factory=dict)
    concurrency: int = Field(default=4, ge=1, le=64)


class CapOutput(StrictModel):
    type: Literal["cap"] = "cap"
    id: str = Field(default="cap", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    sender: str = Field(default="ouie@localhost", min_length=1, description="no spaces/commas")
    sender_name: str = "ouie"
    status: Literal["Actual", "Exercise", "System", "Test", "Draft"] = "Actual"
    scope: Literal["Public", "Restricted", "Private"] = "Restricted"
    restriction: str = "control room and police only"
    language: str = "en-GB"
    expires_after_s: float = Field(default=3600.0, gt=0.0)
    web_base_url: str | None = Field(default=None, description="incident page base URL")
    url: str | None = Field(default=None, pattern=r"^https?://", description="POST target")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)


class MqttOutput(StrictModel):
    type: Literal["mqtt"] = "mqtt"
    id: str = Field(default="mqtt", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    url: str = Field(default="mqtt://127.0.0.1:1883")
    username: str | None = None
    password_enc: EncryptedSecret | None = None
    client_id: str = "ouie-hub-incidents"
    qos: Literal[0, 1, 2] = 1
    retain: bool = False
    topic_prefix: str = "ouie/v1"
    queue_size: int = Field(default=10_000, ge=1)
    reconnect_max_s: float = Field(default=30.0, gt=0.0)


class VmsWebhookOutput(StrictModel):
    type: Literal["vms_webhook"] = "vms_webhook"
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    url: str = Field(pattern=r"^https?://")
    pre_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    post_s: float = Field(default=120.0, ge=0.0, le=3600.0)
    camera_map: dict[str, str] = Field(
        default_factory=dict, description="ouie camera id → VMS camera id (overrides)"
    )
    secret_enc: EncryptedSecret | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=lambda: RetryPolicy(max_attempts=4))


OutputConfig = Annotated[
    WebhookOutput | CapOutput | MqttOutput | VmsWebhookOutput, Field(discriminator="type")
]
