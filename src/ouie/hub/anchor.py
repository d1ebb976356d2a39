"""Audit anchoring: the hub signs the head of its audit chain and publishes it (issue 18,
finding 7).

The hash chain (``ouie.hub.audit``) shows that entries were edited or removed *unless* whoever
removed them also re-hashed the rest with the project's own ``entry_hash``: the chain has no
key, so someone with write access to the database can produce a shorter chain that verifies.
An anchor closes that gap. Every ``audit.anchor_interval_s`` the hub signs the current head
(sequence number and hash) with an Ed25519 key kept in a file outside the database
(``audit.anchor_key``, made by ``ouie audit keygen``), stores the signed head, appends it to
``audit.anchor_log`` when set, and publishes it on the public transparency page and at
``GET /api/v1/public/audit-anchor``, so that anyone (the DPO, a journalist, a cron job) can
record it. A rewrite of the database cannot reach those copies: an anchored entry that is
missing, or whose hash differs, is found by ``ouie audit verify --anchors FILE``. Since each
hash covers every entry before it, one matching anchor vouches for the whole chain up to it.

The signature covers ``ouie-audit-anchor/1\\n`` followed by the canonical JSON of the sequence
number, hash, signing time and key id, so a signature cannot be replayed for another head or
read as anything else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ouie.core.model_base import StrictModel
from ouie.hub.db import AuditAnchor, AuditEntry, AuditHead, dumps
from ouie.hub.schemas import IsoTime

DOMAIN = b"ouie-audit-anchor/1\n"


class SignedHead(StrictModel):
    """One anchor: the chain's head at ``signed_at``, signed. What outsiders record."""

    seq: int = Field(ge=1, le=2**62, description="sequence number of the last entry")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="that entry's chain hash")
    signed_at: IsoTime
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$", description="sha256 of the public key, 16 hex")
    public_key: str = Field(max_length=64, description="Ed25519 public key, base64 (32 bytes)")
    signature: str = Field(max_length=128, description="Ed25519 signature, base64 (64 bytes)")

    def message(self) -> bytes:
        """The bytes the signature covers."""
        return DOMAIN + signed_bytes(self.seq, self.hash, self.signed_at, self.key_id)


class AnchorPublication(StrictModel):
    """What the public page and ``/api/v1/public/audit-anchor`` publish."""

    enabled: bool = Field(description="whether this hub signs its audit head")
    key_id: str | None
    public_key: str | None = Field(description="base64 Ed25519 public key; pin it once")
    latest: SignedHead | None
    recent: list[SignedHead] = Field(description="the last anchors, newest first")


def signed_bytes(seq: int, head_hash: str, signed_at: datetime, key_id: str) -> bytes:
    when = signed_at.astimezone(UTC).isoformat()
    return dumps({"seq": seq, "hash": head_hash, "signed_at": when, "key_id": key_id}).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


class AnchorKeyError(ValueError):
    """The anchor key file is missing, unreadable or not an Ed25519 key."""


class AnchorKey:
    """The hub's signing key, loaded from its file (never stored in the database)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private
        self.public = private.public_key()
        self.key_id = key_id_of(self.public)
        self.public_b64 = _b64(raw_public(self.public))

    @classmethod
    def load(cls, path: Path) -> AnchorKey:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise AnchorKeyError(
                f"audit anchor key {path}: {exc.strerror or exc} "
                "(create one with `ouie audit keygen --out PATH`)"
            ) from exc
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise AnchorKeyError(f"audit anchor key {path}: not a PEM private key") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise AnchorKeyError(f"audit anchor key {path}: not an Ed25519 key")
        return cls(private)

    @classmethod
    def generate(cls, path: Path) -> AnchorKey:
        """A new key written to ``path`` (mode 0600, never overwritten) and its public half
        to ``path.pub`` (PEM)."""
        key = cls(Ed25519PrivateKey.generate())
        pem = key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        public_pem = key.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        Path(f"{path}.pub").write_bytes(public_pem)
        return key

    def sign(self, seq: int, head_hash: str, signed_at: datetime) -> SignedHead:
        # whole seconds: the signed text and every JSON copy of it then agree exactly
        when = signed_at.astimezone(UTC).replace(microsecond=0)
        signature = self.private.sign(DOMAIN + signed_bytes(seq, head_hash, when, self.key_id))
        return SignedHead(
            seq=seq,
            hash=head_hash,
            signed_at=when,
            key_id=self.key_id,
            public_key=self.public_b64,
            signature=_b64(signature),
        )


def load_public_key(text: str) -> Ed25519PublicKey:
    """A public key given as PEM (``ouie audit keygen``'s ``.pub``) or as the base64 the
    public page shows."""
    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(stripped.encode("ascii"))
            if isinstance(key, Ed25519PublicKey):
                return key
            raise ValueError("not an Ed25519 public key")
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(stripped, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValueError(f"not an Ed25519 public key: {exc}") from exc


# ----------------------------------------------------------------------------- storage
def _view(row: AuditAnchor) -> SignedHead:
    return SignedHead(
        seq=row.seq,
        hash=row.hash,
        signed_at=row.signed_at,
        key_id=row.key_id,
        public_key=row.public_key,
        signature=row.signature,
    )


def recent(session: Session, limit: int = 20) -> list[SignedHead]:
    rows = session.execute(select(AuditAnchor).order_by(AuditAnchor.id.desc()).limit(limit))
    return [_view(row) for row in rows.scalars()]


def anchor_now(session: Session, key: AnchorKey, now: datetime) -> SignedHead | None:
    """Sign the current head, in the caller's transaction; None when the chain is empty or
    the head is already anchored (an unchanged head needs no new signature)."""
    head = session.get(AuditHead, 1)
    if head is None or head.seq == 0:
        return None
    last = recent(session, 1)
    if last and last[0].seq == head.seq and last[0].hash == head.hash:
        return None
    signed = key.sign(head.seq, head.hash, now)
    session.add(
        AuditAnchor(
            seq=signed.seq,
            hash=signed.hash,
            signed_at=signed.signed_at,
            key_id=signed.key_id,
            public_key=signed.public_key,
            signature=signed.signature,
        )
    )
    return signed


def publication(session: Session, key: AnchorKey | None, limit: int = 20) -> AnchorPublication:
    anchors = recent(session, limit)
    return AnchorPublication(
        enabled=key is not None,
        key_id=key.key_id if key is not None else None,
        public_key=key.public_b64 if key is not None else None,
        latest=anchors[0] if anchors else None,
        recent=anchors,
    )


def append_log(path: Path, signed: SignedHead) -> None:
    """Append one anchor to a JSON-lines file (outside the database), flushed to disk."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(signed.model_dump_json() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# ----------------------------------------------------------------------------- checking
_HEADS = TypeAdapter(list[SignedHead])


def read_anchors(path: Path) -> list[SignedHead]:
    """Anchors recorded in ``path``: JSON lines of signed heads (``audit.anchor_log``, or
    ``latest`` saved from the API), or whole saved ``/public/audit-anchor`` documents."""
    text = path.read_text(encoding="utf-8")
    documents: list[object] = []
    try:
        documents.append(json.loads(text))
    except json.JSONDecodeError:
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    documents.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from exc
    heads: list[object] = []
    for document in documents:
        items = document if isinstance(document, list) else [document]
        for item in items:
            if isinstance(item, dict) and "recent" in item:  # a saved publication
                heads += item.get("recent") or []
                if item.get("latest"):
                    heads.append(item["latest"])
            else:
                heads.append(item)
    try:
        return _HEADS.validate_python(heads)
    except ValidationError as exc:
        raise ValueError(f"{path}: not signed audit heads ({exc.error_count()} errors)") from exc


@dataclass(frozen=True)
class AnchorCheck:
    ok: bool
    anchors: int
    problems: list[str]


def _signature_problem(head: SignedHead, trusted: dict[str, Ed25519PublicKey]) -> str | None:
    key = trusted.get(head.key_id)
    if key is None:
        return f"anchor at entry {head.seq}: signed by unknown key {head.key_id}"
    try:
        key.verify(base64.b64decode(head.signature, validate=True), head.message())
    except (InvalidSignature, ValueError, binascii.Error):
        return f"anchor at entry {head.seq}: signature does not verify (forged or altered)"
    return None


def check_anchors(
    session: Session, anchors: Iterable[SignedHead], trusted: Sequence[Ed25519PublicKey]
) -> AnchorCheck:
    """Each anchor must carry a valid signature by a trusted key and name an entry that is
    still in the chain with the same hash. Run together with ``audit.verify`` (the chain
    itself must also be intact for one anchor to vouch for every entry before it)."""
    keys = {key_id_of(key): key for key in trusted}
    problems: list[str] = []
    count = 0
    unique = {(a.seq, a.hash, a.signature): a for a in anchors}
    for head in sorted(unique.values(), key=lambda a: a.seq):
        count += 1
        problem = _signature_problem(head, keys)
        if problem:
            problems.append(problem)
            continue
        entry = session.get(AuditEntry, head.seq)
        if entry is None:
            problems.append(
                f"anchored entry {head.seq} is missing: entries were deleted "
                "(the chain was cut or rewritten after it was anchored)"
            )
        elif entry.hash != head.hash:
            problems.append(
                f"entry {head.seq} no longer has the anchored hash: the log was rewritten "
                f"(anchored {head.hash[:16]}…, now {entry.hash[:16]}…)"
            )
    if count == 0:
        problems.append("no anchors in the file")
    return AnchorCheck(ok=not problems, anchors=count, problems=problems)
