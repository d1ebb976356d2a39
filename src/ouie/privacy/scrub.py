"""Log scrubbing: credentials never reach a log line, an error message or the audit export.

Camera and broker URLs carry passwords (``rtsp://admin:pass@cam/...``), integrations put
tokens in query strings (``?access_token=...``) and HTTP clients echo ``Authorization``
headers in their errors. ``scrub`` replaces every such secret with ``***`` in any text;
``ScrubbingFilter`` applies it to every record of a logging handler, so one line at
start-up (``install_log_scrubbing()``) covers the whole process.

What is kept: scheme, user name, host, port and path, so a log still says which camera
or broker failed. What is removed: the password part of a URL's user info, values of
query parameters and ``key=value`` / ``key: value`` pairs whose key names a secret, bearer
and basic credentials, and PEM private key blocks.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"

#: Names (case-insensitive, matched as a whole key or as its suffix after ``_``/``-``)
#: whose values are secrets.
SECRET_KEYS = (
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "key",
    "auth",
    "authorization",
    "signature",
    "sig",
    "session",
    "sessionid",
    "credential",
    "credentials",
    "private_key",
    "client_secret",
)
_KEY_ALTERNATIVES = "|".join(sorted((re.escape(k) for k in SECRET_KEYS), key=len, reverse=True))
#: A key that is a secret name, possibly prefixed (``mqtt_password``, ``x-api-key``).
_SECRET_KEY = rf"(?:[A-Za-z0-9]+[_-])*(?:{_KEY_ALTERNATIVES})"

# scheme://user:password@host  ->  scheme://user:***@host
_URL_USERINFO = re.compile(
    r"(?P<prefix>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@?#]*:)(?P<secret>[^\s@/?#]*)@"
)
# ?token=...&x=1  or  &api_key=...
_QUERY_SECRET = re.compile(rf"(?P<prefix>[?&;](?i:{_SECRET_KEY})=)(?P<secret>[^&#\s;\"']*)")
# Authorization: Bearer xyz / Basic xyz (header or free text)
_BEARER = re.compile(r"(?P<prefix>\b(?i:bearer)\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})")
# Basic credentials are base64: at least one digit, "+", "/" or "=" (so prose is left alone)
_BASIC = re.compile(
    r"(?P<prefix>\b(?i:basic)\s+)(?P<secret>(?=[A-Za-z]*[0-9+/=])[A-Za-z0-9+/]{8,}={0,2})"
)
# password=xyz, "password": "xyz", password: xyz (logs of config dumps, reprs, CLI args)
_PAIR_SECRET = re.compile(
    rf"(?P<prefix>(?<![A-Za-z0-9_-])[\"']?(?i:{_SECRET_KEY})[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<secret>(?!\*\*\*)(?!(?i:bearer|basic)\s)[^\s\"',;&}\])]+)"
)
_PEM_KEY = re.compile(
    r"-----BEGIN (?P<kind>[A-Z ]*PRIVATE KEY)-----.*?-----END (?P=kind)-----", re.DOTALL
)


def _mask(match: re.Match[str]) -> str:
    if not match.group("secret"):
        return match.group(0)
    return match.group("prefix") + MASK + match.group(0)[match.end("secret") - match.start() :]


def scrub(text: str) -> str:
    """``text`` with every credential it contains replaced by ``***``."""
    if not text:
        return text
    text = _PEM_KEY.sub(lambda m: f"-----BEGIN {m.group('kind')}-----{MASK}", text)
    text = _URL_USERINFO.sub(_mask, text)
    text = _QUERY_SECRET.sub(_mask, text)
    text = _BEARER.sub(_mask, text)
    text = _BASIC.sub(_mask, text)
    return _PAIR_SECRET.sub(_mask, text)


def scrub_value(value: Any) -> Any:
    """``scrub`` applied through dicts, lists and tuples (JSON-like data for exports);
    values under a secret-named key are masked whole."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {
            key: (MASK if is_secret_key(str(key)) and item not in (None, "") else scrub_value(item))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(scrub_value(item) for item in value)
    return value


_SECRET_KEY_FULL = re.compile(rf"^(?i:{_SECRET_KEY})$")


def is_secret_key(name: str) -> bool:
    """True when a config or mapping key names a credential (``password``, ``mqtt_token``)."""
    return bool(_SECRET_KEY_FULL.match(name))


class ScrubbingFilter(logging.Filter):
    """A logging filter that scrubs each record's final message (and its exception text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: scrub the raw parts
            message = f"{record.msg} {record.args}"
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def install_log_scrubbing(logger: logging.Logger | None = None) -> ScrubbingFilter:
    """Add a ``ScrubbingFilter`` to every handler of ``logger`` (default: the root logger)
    and to the logger itself, and return it. Idempotent."""
    target = logger or logging.getLogger()
    existing = next((f for f in target.filters if isinstance(f, ScrubbingFilter)), None)
    chosen = existing or ScrubbingFilter()
    if existing is None:
        target.addFilter(chosen)
    for handler in target.handlers:
        if not any(isinstance(f, ScrubbingFilter) for f in handler.filters):
            handler.addFilter(chosen)
    return chosen
