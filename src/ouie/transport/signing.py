"""Ed25519 signatures on wire messages: a sensor signs its events and status, the hub its
threshold configs, so a message is trusted for who made it, not for the path it came by.

What is signed is the message's JSON object without its ``signature`` member, in one
canonical form (keys sorted at every level, no whitespace, UTF-8, no NaN), after a domain
tag. The form is rebuilt from the *parsed* JSON object rather than from pydantic's output:
a verifier recreates the exact bytes from whatever it received, even when the sender's
serialiser differs from its own or the payload was re-serialised on the way (HTTP ingest
parses and re-encodes the body). Python's ``json`` writes floats as their shortest
round-trip ``repr``, so a number survives the round trip bit for bit.

Keys: a private key is a PKCS#8 PEM file (mode 0600); a public key is a PEM file, or the
base64 of its 32 raw bytes where it is stored as text (the hub's sensor registry).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ouie.core.messages import (
    EventMessage,
    ImpulseOnsetMessage,
    OnsetRequestMessage,
    StatusMessage,
    ThresholdConfigMessage,
)

SIGNATURE_FIELD = "signature"
#: Separates these signatures from any other use of the same key.
DOMAIN = b"ouie/v1 signed message\n"

SignedMessage = TypeVar(
    "SignedMessage",
    EventMessage,
    StatusMessage,
    ThresholdConfigMessage,
    OnsetRequestMessage,
    ImpulseOnsetMessage,
)


class SigningKeyError(ValueError):
    """A key file or text that is not an Ed25519 key."""


def canonical_bytes(data: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: ``data`` without ``signature``, canonically encoded.

    Raises ``ValueError`` for values JSON cannot carry exactly (NaN, infinities)."""
    body = {key: value for key, value in data.items() if key != SIGNATURE_FIELD}
    text = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return DOMAIN + text.encode("utf-8")


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


class VerifyKey:
    """An Ed25519 public key that checks signatures made by its ``SigningKey``."""

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key

    @classmethod
    def from_text(cls, text: str) -> VerifyKey:
        """From the base64 of the 32 raw bytes (``text``)."""
        try:
            raw = base64.b64decode(text.strip(), validate=True)
            return cls(Ed25519PublicKey.from_public_bytes(raw))
        except (binascii.Error, ValueError) as exc:
            raise SigningKeyError("not the base64 of an Ed25519 public key") from exc

    @classmethod
    def load(cls, path: Path) -> VerifyKey:
        """From a PEM file (SubjectPublicKeyInfo)."""
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except ValueError as exc:
            raise SigningKeyError(f"{path} is not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
        return cls(key)

    @property
    def text(self) -> str:
        raw = self._key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode("ascii")

    def pem(self) -> bytes:
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def save(self, path: Path) -> None:
        path.write_bytes(self.pem())

    def verify(self, data: Mapping[str, Any]) -> bool:
        """Whether ``data[signature]`` is this key's signature over the rest of ``data``."""
        signature = data.get(SIGNATURE_FIELD)
        if not isinstance(signature, str):
            return False
        try:
            raw = _b64decode(signature)
            self._key.verify(raw, canonical_bytes(data))
        except (InvalidSignature, ValueError, binascii.Error):
            return False
        return True

    def verify_message(
        self,
        message: EventMessage
        | StatusMessage
        | ThresholdConfigMessage
        | OnsetRequestMessage
        | ImpulseOnsetMessage,
    ) -> bool:
        return self.verify(json.loads(message.model_dump_json()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyKey) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


class SigningKey:
    """An Ed25519 private key that signs messages."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """From an unencrypted PKCS#8 PEM file."""
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(f"{path} is not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
        return cls(key)

    def save(self, path: Path) -> None:
        """Write the key readable by its owner only (created 0600, never world-readable)."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(path, pem)

    @property
    def public(self) -> VerifyKey:
        return VerifyKey(self._key.public_key())

    def sign(self, data: Mapping[str, Any]) -> str:
        """The signature over ``data`` (its ``signature`` member, if any, left out)."""
        return _b64encode(self._key.sign(canonical_bytes(data)))

    def sign_message(self, message: SignedMessage) -> SignedMessage:
        """``message`` with its ``signature`` set. Signs what the receiver will parse: the
        JSON the transports send (``model_dump_json``), read back."""
        unsigned = message.model_copy(update={SIGNATURE_FIELD: None})
        signature = self.sign(json.loads(unsigned.model_dump_json()))
        return message.model_copy(update={SIGNATURE_FIELD: signature})


def write_private(path: Path, data: bytes) -> None:
    """Create or replace ``path`` with mode 0600 before any byte is written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


__all__ = [
    "DOMAIN",
    "SIGNATURE_FIELD",
    "SigningKey",
    "SigningKeyError",
    "VerifyKey",
    "canonical_bytes",
    "write_private",
]
