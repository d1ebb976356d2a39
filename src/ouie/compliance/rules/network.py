"""Rule ``mqtt-insecure``: a broker beyond loopback needs TLS and authentication. The
loopback test is shared with ``http-insecure`` (hub console, verification outputs)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ouie.compliance.findings import Finding


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
    url: str, username: str | None, password: str | None, where: str, source: str = ""
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
    if not user:
        problems.append("without authentication (set username and password)")
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
    elif not (password or url_password):
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
