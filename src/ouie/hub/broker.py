"""The Mosquitto configuration a site runs (``ouie broker config``), and its check.

What the generated broker enforces, before any message reaches the hub:

* one listener, TLS only; a client must present a certificate of the site CA
  (``require_certificate``), whose common name becomes its MQTT user name
  (``use_identity_as_username``) and its client id (``use_username_as_clientid``: no
  client can take over another's session, the hub's included); no anonymous access;
* an ACL: a sensor ``<site>/<sensor>`` may write only ``ouie/v1/<site>/<sensor>/events``,
  ``/status`` and ``/onsets`` and read only its own ``/config``, ``/ack`` and
  ``/onset-request``; only the hub identities read every sensor's topics and write configs,
  receipts and onset requests;
* persistence on every change (``durable_persistence``): the broker writes its store after
  each queued message or subscription change, so a broker crash loses nothing it had
  acknowledged (docs/security.md has the cost).

``broker_config_problems`` reads a Mosquitto config back and lists what falls short of
this; ``ouie check`` runs it on the file named by the hub's ``mqtt.broker_config``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The sensors' rules: ``%u`` is the certificate's CN, ``<site>/<sensor>`` (``ouie.hub.pki``).
SENSOR_PATTERNS = (
    "pattern write ouie/v1/%u/events",
    "pattern write ouie/v1/%u/status",
    "pattern read ouie/v1/%u/config",
    "pattern read ouie/v1/%u/ack",
    "pattern write ouie/v1/%u/onsets",
    "pattern read ouie/v1/%u/onset-request",
)
#: What each hub identity may do: read everything of ouie, write configs, receipts and onset
#: requests.
HUB_TOPICS = (
    "topic read ouie/v1/#",
    "topic write ouie/v1/+/+/config",
    "topic write ouie/v1/+/+/ack",
    "topic write ouie/v1/+/+/onset-request",
)


def durable_persistence(data_dir: Path) -> list[str]:
    """Mosquitto lines that save the store on every change (not only at shutdown or every
    30 min, Mosquitto's default): ``autosave_on_changes`` counts queued messages,
    retained messages and subscription changes, and saves when the count reaches
    ``autosave_interval``, here 1. The no-loss tests start their broker with these."""
    return [
        "persistence true",
        f"persistence_location {data_dir.as_posix().rstrip('/')}/",
        "autosave_on_changes true",
        "autosave_interval 1",
    ]


def render_acl(hub_identities: Sequence[str]) -> str:
    if not hub_identities:
        raise ValueError("the ACL needs at least one hub identity")
    lines = [
        "# ouie ACL, written by `ouie broker config` (docs/security.md).",
        "# Sensors: the user name is the certificate's CN, <site>/<sensor>.",
        *SENSOR_PATTERNS,
        "",
    ]
    for name in hub_identities:
        lines += [f"user {name}", *HUB_TOPICS, ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class MosquittoPlan:
    """Everything the generated config names."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    acl_file: Path
    data_dir: Path
    hub_identities: tuple[str, ...]
    listen_host: str = "0.0.0.0"
    port: int = 8883
    run_as_user: str | None = None  # None: "mosquitto", the Debian package's user
    log_file: Path | None = None
    #: per-client queue while it is away; Mosquitto's default (1000) would drop the
    #: backlog of a hub that is down for a few minutes at a busy site
    max_queued_messages: int = 1_000_000
    extra_lines: tuple[str, ...] = field(default=())


def render_config(plan: MosquittoPlan) -> str:
    user = plan.run_as_user or "mosquitto"
    lines = [
        "# ouie broker, written by `ouie broker config` (docs/security.md). Regenerate rather",
        "# than edit: `ouie check` reads this file back.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"acl_file {plan.acl_file}",
        f"user {user}",
        f"max_queued_messages {plan.max_queued_messages}",
        *durable_persistence(plan.data_dir),
    ]
    if plan.log_file is not None:
        lines += [
            f"log_dest file {plan.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
    lines += [
        "",
        f"listener {plan.port} {plan.listen_host}",
        f"cafile {plan.ca_file}",
        f"certfile {plan.cert_file}",
        f"keyfile {plan.key_file}",
        "tls_version tlsv1.2",
        "require_certificate true",
        "use_identity_as_username true",
        "use_username_as_clientid true",
        *plan.extra_lines,
        "",
    ]
    return "\n".join(lines)


def write_broker_config(plan: MosquittoPlan, conf_file: Path) -> None:
    """Write the config and its ACL (``plan.acl_file``); creates the data folder."""
    conf_file.parent.mkdir(parents=True, exist_ok=True)
    plan.acl_file.parent.mkdir(parents=True, exist_ok=True)
    plan.data_dir.mkdir(parents=True, exist_ok=True)
    plan.acl_file.write_text(render_acl(plan.hub_identities), encoding="utf-8")
    conf_file.write_text(render_config(plan), encoding="utf-8")


# ------------------------------------------------------------------------------ the check


@dataclass
class _Listener:
    where: str
    options: dict[str, str] = field(default_factory=dict)


def _options(text: str) -> tuple[dict[str, str], list[_Listener]]:
    """Global options and listeners of a Mosquitto config (last value of a key wins)."""
    general: dict[str, str] = {}
    listeners: list[_Listener] = []
    current: _Listener | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        value = value.strip()
        if key == "listener":
            current = _Listener(f"listener {value}")
            listeners.append(current)
        elif key == "port" and current is None:
            listeners.append(_Listener(f"port {value}"))
        elif current is not None and key not in {"acl_file", "allow_anonymous", "persistence"}:
            current.options[key] = value
        else:
            general[key] = value
    return general, listeners


def broker_config_problems(text: str, acl_text: str | None = None) -> list[str]:
    """What keeps a Mosquitto config from the trust ``ouie broker config`` gives; empty:
    none. ``acl_text``: the ACL file's contents when it could be read."""
    general, listeners = _options(text)
    problems: list[str] = []
    if general.get("per_listener_settings", "false") == "true":
        problems.append("per_listener_settings true: the checks below assume one global ACL")
    if not listeners:
        problems.append("no listener")
    if general.get("allow_anonymous", "false") != "false":
        problems.append("allow_anonymous is not false")
    if not general.get("acl_file"):
        problems.append("no acl_file: any client may publish on any sensor's topics")
    for listener in listeners:
        opts = listener.options
        if not (opts.get("certfile") and opts.get("keyfile")):
            problems.append(f"{listener.where} is not TLS (no certfile/keyfile)")
            continue
        if not (opts.get("cafile") or opts.get("capath")):
            problems.append(f"{listener.where} has no cafile to check client certificates")
        if opts.get("require_certificate") != "true":
            problems.append(f"{listener.where} does not require a client certificate")
        if opts.get("use_identity_as_username") != "true":
            problems.append(
                f"{listener.where} does not take the certificate's name as the user name, "
                "so the ACL cannot tell sensors apart"
            )
    if acl_text is not None:
        rules = {" ".join(line.split()) for line in acl_text.splitlines()}
        missing = [rule for rule in SENSOR_PATTERNS[:2] if rule not in rules]
        if missing:
            problems.append(f"the ACL lacks the per-sensor rules {', '.join(missing)}")
        for line in acl_text.splitlines():
            words = line.split()
            if len(words) < 2 or words[0] != "pattern":
                continue
            # a pattern applies to every client: only its own topics (%u, %c) may be writable
            access = words[1] if len(words) >= 3 else "readwrite"
            topic = words[-1]
            if access in {"write", "readwrite"} and "%u" not in topic and "%c" not in topic:
                problems.append(f"the ACL lets every client write {topic}")
    return problems


__all__ = [
    "HUB_TOPICS",
    "SENSOR_PATTERNS",
    "MosquittoPlan",
    "broker_config_problems",
    "durable_persistence",
    "render_acl",
    "render_config",
    "write_broker_config",
]
