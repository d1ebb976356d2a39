"""Rule ``weak-credential``: no default, placeholder or weak password, token or secret."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ouie.compliance.findings import Finding
from ouie.compliance.rules.walk import walk
from ouie.privacy.scrub import is_secret_key

WEAK_SECRETS = frozenset(
    {
        "",
        "admin",
        "administrator",
        "password",
        "passw0rd",
        "password1",
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "default",
        "ouie",
        "root",
        "toor",
        "guest",
        "user",
        "test",
        "demo",
        "mosquitto",
        "mqtt",
        "public",
        "private",
        "hub",
        "node",
        "postgres",
        "letmein",
        "welcome",
        "qwerty",
        "azerty",
        "123456",
        "12345678",
        "123456789",
        "1234567890",
        "000000",
        "pass",
        "xxx",
        "todo",
        "token",
    }
)
MIN_SECRET_LENGTH = 12
_PLACEHOLDER = re.compile(r"^(<.*>|\$\{.*\}|x+|\*+|.*change.?me.*|.*example.*|todo.*)$", re.I)


def weakness(secret: str, username: str | None = None) -> str | None:
    """Why ``secret`` is unacceptable as a credential, or None."""
    lowered = secret.lower()
    if lowered in WEAK_SECRETS:
        return "is a well-known default"
    if _PLACEHOLDER.match(secret):
        return "is a placeholder"
    if username and username.lower() in lowered:
        return "contains the user name"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    classes = sum(
        bool(re.search(p, secret)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]")
    )
    if len(set(secret)) < 6 or (classes < 3 and len(secret) < 20):
        return "is too simple (use 20+ random characters, or mix 3 character classes)"
    return None


def _url_credentials(url: str) -> tuple[str | None, str | None]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None, None
    if "://" not in url:
        return None, None
    return parts.username, parts.password


def credential_findings(raw: Mapping[str, Any], source: str = "") -> list[Finding]:
    """Weak secrets under secret-named keys, and weak passwords inside URLs. The secret
    itself is never repeated in the message."""
    found: list[Finding] = []
    for path, key, value in walk(raw):
        if not isinstance(value, str | int) or isinstance(value, bool):
            continue
        text = str(value)
        if key and is_secret_key(key):
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            username = _sibling(raw, parent, ("username", "user", "login"))
            reason = weakness(text, username)
            if reason:
                found.append(Finding("weak-credential", f"the secret {reason}", path, source))
        elif isinstance(value, str):
            user, password = _url_credentials(text)
            if password is not None:
                reason = weakness(password, user)
                if reason:
                    found.append(
                        Finding(
                            "weak-credential",
                            f"the password in this URL {reason}",
                            path,
                            source,
                        )
                    )
    return found


def _sibling(raw: Mapping[str, Any], parent: str, names: Sequence[str]) -> str | None:
    node: Any = raw
    for part in parent.split(".") if parent else []:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if not isinstance(node, Mapping):
        return None
    for name in names:
        value = node.get(name)
        if isinstance(value, str) and value:
            return value
    return None
