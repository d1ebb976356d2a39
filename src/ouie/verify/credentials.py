"""Credentials encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256, from ``cryptography``).

Camera passwords and webhook signing secrets are stored in config (and in the hub's
database) only as Fernet tokens (``gAAAAA…``). The key comes from the environment
(``OUIE_SECRET_KEY``) or a key file readable only by the service user
(``secrets.key_file``), never from the config file itself. Several comma-separated keys
rotate: the first encrypts, all of them decrypt.

``ouie verify keygen`` prints a new key; ``ouie verify encrypt`` reads a secret on
standard input (not the command line, which shells keep in history) and prints its
token. Decrypted values are ``SecretStr`` so they print as ``**********`` in logs and
reprs; they are only unwrapped at the moment a protocol needs them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

KEY_ENV = "OUIE_SECRET_KEY"


class SecretKeyError(ValueError):
    """No key, a malformed key, or a token that no key opens. Never includes secrets."""


class SecretBox:
    """Encrypts and decrypts short secrets with one or more Fernet keys."""

    def __init__(self, keys: str | bytes) -> None:
        text = keys.decode("ascii") if isinstance(keys, bytes) else keys
        parts = [k.strip() for k in text.split(",") if k.strip()]
        if not parts:
            raise SecretKeyError("no secret key given")
        try:
            self._fernet = MultiFernet([Fernet(k.encode("ascii")) for k in parts])
        except (ValueError, TypeError):
            raise SecretKeyError(
                "the secret key is not a Fernet key (32 url-safe base64 bytes; "
                "make one with `ouie verify keygen`)"
            ) from None

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode("ascii")

    @classmethod
    def load(cls, key_file: Path | None = None, env: str = KEY_ENV) -> SecretBox:
        """The box from ``$OUIE_SECRET_KEY``, else from ``key_file``."""
        value = os.environ.get(env)
        if value:
            return cls(value)
        if key_file is None:
            raise SecretKeyError(f"no secret key: set {env} or secrets.key_file")
        try:
            mode = key_file.stat().st_mode
            text = key_file.read_text(encoding="ascii")
        except OSError as exc:
            raise SecretKeyError(f"cannot read the key file {key_file}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretKeyError(f"the key file {key_file} is readable by others; chmod 600 it")
        return cls(text)

    def encrypt(self, plaintext: str | SecretStr) -> str:
        raw = plaintext.get_secret_value() if isinstance(plaintext, SecretStr) else plaintext
        return self._fernet.encrypt(raw.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> SecretStr:
        try:
            return SecretStr(self._fernet.decrypt(token.encode("ascii")).decode("utf-8"))
        except (InvalidToken, UnicodeError, ValueError):
            raise SecretKeyError(
                "an encrypted secret could not be decrypted with the configured key(s)"
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the first key (after adding a new key in front)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretKeyError("the token could not be decrypted for rotation") from None
