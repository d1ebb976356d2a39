"""Rules ``mqtt-insecure`` (a broker beyond loopback needs TLS and authentication) and
``mqtt-trust-missing`` (production: TLS with client certificates, the broker's ACL and
signed messages, loopback included). The loopback test is shared with ``http-insecure``
(hub console, verification outputs)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from ouie.compliance.findings import Finding
from ouie.config.hub import HubSettings
from ouie.config.node import NodeSettings
from ouie.hub.broker import broker_config_problems

TRUST = "mqtt-trust-missing"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in {"localhost", "localhost.localdomain", "ip6-localhost"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def mqtt_findings(
    url: str,
    username: str | None,
    password: str | None,
    where: str,
    source: str = "",
    *,
    client_certificate: bool = False,
) -> list[Finding]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        url_user, url_password = parts.username, parts.password
    except ValueError:
        return [Finding("config-invalid", f"{url!r} is not a URL", where, source)]
    if is_loopback(host):
        return []
    problems = []
    if parts.scheme not in {"mqtts", "ssl", "wss"}:
        problems.append("without TLS (use mqtts://)")
    user = username or url_user
    if not user and not client_certificate:
        problems.append("without authentication (a client certificate, or username and password)")
    found = []
    if problems:
        found.append(
            Finding(
                "mqtt-insecure",
                f"broker {host} is not on loopback and is reached " + " and ".join(problems),
                where,
                source,
            )
        )
    elif user and not client_certificate and not (password or url_password):
        # The usual production set-up: the password comes from the service's environment
        # (OUIE_<ROLE>__...__PASSWORD) at run time; checked here when that is set.
        found.append(
            Finding(
                "mqtt-insecure",
                f"user {user} has no password in this file or the environment; the service "
                "must get it from its environment (OUIE_<ROLE>__...__PASSWORD)",
                where,
                source,
                "warning",
            )
        )
    return found


def _tls_url(url: str) -> bool:
    try:
        return urlsplit(url).scheme in {"mqtts", "ssl"}
    except ValueError:
        return False


def hub_trust_findings(settings: HubSettings, source: str = "") -> list[Finding]:
    """A production hub: sensor messages must be signed; configs it pushes must be signed;
    its broker must be TLS-only with client certificates and the per-sensor ACL. Loopback
    is no exemption: anything on the hub's host (a web process, a compromised service) could
    otherwise publish as any sensor."""
    found: list[Finding] = []
    if not settings.ingest.require_signatures:
        found.append(
            Finding(
                TRUST,
                "unsigned sensor messages are accepted; set ingest.require_signatures: true "
                "(sensors get their signing key from `ouie sensor add`)",
                "ingest.require_signatures",
                source,
            )
        )
    identity = settings.identity
    if identity.signing_key is None and identity.pki_dir is None:
        found.append(
            Finding(
                TRUST,
                "threshold configs would go unsigned, and a forged retained config could "
                "silence a sensor; set identity.pki_dir (`ouie pki init`) or identity.signing_key",
                "identity",
                source,
            )
        )
    mqtt = settings.mqtt
    if not mqtt.enabled:
        return found
    if not _tls_url(mqtt.url):
        found.append(
            Finding(
                TRUST,
                f"the hub reaches its broker without TLS ({mqtt.url}); use mqtts://, on "
                "loopback too",
                "mqtt.url",
                source,
            )
        )
    if mqtt.tls is None:
        found.append(
            Finding(
                TRUST,
                "the hub presents no client certificate (mqtt.tls; `ouie pki init` issues it)",
                "mqtt.tls",
                source,
            )
        )
    found += broker_config_findings(mqtt.broker_config, source)
    return found


def _readable(path: Path, base: Path | None) -> Path | None:
    for candidate in (path, base / path if base is not None and not path.is_absolute() else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def broker_config_findings(broker_config: Path | None, source: str = "") -> list[Finding]:
    """The Mosquitto config named by ``mqtt.broker_config``, read back wherever it can be
    read: TLS listeners only, client certificates required, the certificate's name as user
    name, an ACL. A relative path is also looked for beside the hub's config file; so is
    the ACL, by its file name, when the path the broker config gives is not there (a copy
    checked elsewhere)."""
    where = "mqtt.broker_config"
    if broker_config is None:
        return [
            Finding(
                TRUST,
                "the broker's configuration is unknown: write it with `ouie broker config` "
                "(TLS, client certificates, per-sensor ACL) and name it in mqtt.broker_config",
                where,
                source,
            )
        ]
    base = Path(source).parent if source and Path(source).is_file() else None
    found_at = _readable(broker_config, base)
    if found_at is None:
        # Checked where the broker's files are (its host, or a copy beside the hub's config);
        # elsewhere (a laptop checking the repository) there is nothing to read, unless the
        # folder is there and the file is not: then the name is probably wrong.
        if not broker_config.parent.is_dir() or broker_config.parent == Path("."):
            return []
        return [
            Finding(
                TRUST,
                f"{broker_config} is not there: write it with `ouie broker config`, or run "
                "`ouie check` where the broker runs",
                where,
                source,
                "warning",
            )
        ]
    text = found_at.read_text(encoding="utf-8", errors="replace")
    acl_text = None
    for line in text.splitlines():
        words = line.split(maxsplit=1)
        if len(words) == 2 and words[0] == "acl_file":
            acl = Path(words[1].strip())
            acl_at = _readable(acl, None) or _readable(Path(acl.name), found_at.parent)
            if acl_at is not None:
                acl_text = acl_at.read_text(encoding="utf-8", errors="replace")
    return [
        Finding(TRUST, f"broker config {broker_config}: {problem}", where, source)
        for problem in broker_config_problems(text, acl_text)
    ]


def node_trust_findings(settings: NodeSettings, source: str = "") -> list[Finding]:
    """A node of a production hub: TLS with its client certificate, its signing key, and
    the hub's public key to check configs by (`ouie sensor add` writes all four)."""
    publish = settings.publish
    if publish.kind != "mqtt":
        return []
    found: list[Finding] = []
    missing = []
    if not _tls_url(publish.mqtt.url):
        missing.append("TLS (an mqtts:// URL)")
    if publish.mqtt.tls is None:
        missing.append("its client certificate (publish.mqtt.tls)")
    if settings.identity.signing_key is None:
        missing.append("its signing key (identity.signing_key)")
    if settings.identity.hub_public_key is None:
        missing.append("the hub's public key (identity.hub_public_key)")
    if missing:
        found.append(
            Finding(
                TRUST,
                "a sensor of a production hub needs "
                + ", ".join(missing)
                + "; `ouie sensor add` issues them",
                "publish.mqtt" if publish.mqtt.tls is None else "identity",
                source,
            )
        )
    return found
