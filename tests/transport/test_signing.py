"""Ed25519 message signatures (``ouie.transport.signing``): what they cover, what breaks them,
and that they survive the ways a payload travels (MQTT bytes, HTTP re-encoding)."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ouie.core.labels import EventLabel
from ouie.core.messages import EventMessage, ThresholdConfigMessage
from ouie.transport.signing import (
    DOMAIN,
    SigningKey,
    SigningKeyError,
    VerifyKey,
    canonical_bytes,
)
from tests.transport.messages import T0, event, status

KEY = SigningKey.generate()


def _wire(message: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(message.model_dump_json())
    return parsed


def test_each_message_kind_round_trips() -> None:
    config = ThresholdConfigMessage(
        site="s1", sensor_id="n1", issued_at=T0, thresholds={EventLabel.GUNSHOT: 0.4}
    )
    for message in (event(3), status(2), config):
        signed = KEY.sign_message(message)
        assert signed.signature is not None and len(signed.signature) == 86
        assert KEY.public.verify(_wire(signed))
        assert KEY.public.verify_message(signed)
        # the same model validates the signed payload (the field is part of the schema)
        assert type(message).model_validate_json(signed.model_dump_json()) == signed


def test_a_signature_survives_http_re_encoding() -> None:
    """HTTP ingest parses the body and encodes it again (other spacing, other key order):
    the canonical form is rebuilt from the parsed object, so the signature still holds."""
    signed = KEY.sign_message(event(7).model_copy(update={"level_db_spl": 81.25}))
    data = _wire(signed)
    reencoded = json.loads(json.dumps(dict(reversed(list(data.items()))), indent=2))
    assert KEY.public.verify(reencoded)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("message_id", "f" * 32),  # finding 3a: a new id on an old payload
        ("sequence", 99),  # finding 3b
        ("onset", (T0 + timedelta(days=6)).isoformat()),  # finding 3c
        ("sensor_id", "n2"),  # finding 2: speaking for another sensor
        ("peak_score", 0.99),
        ("label", "explosion"),
        ("level_db_spl", 120.0),
    ],
)
def test_any_change_breaks_the_signature(field: str, value: object) -> None:
    data = _wire(KEY.sign_message(event(1)))
    data[field] = value
    assert not KEY.public.verify(data)


def test_other_keys_missing_or_malformed_signatures_fail() -> None:
    data = _wire(KEY.sign_message(event(1)))
    assert not SigningKey.generate().public.verify(data)
    assert not KEY.public.verify({**data, "signature": None})
    assert not KEY.public.verify({k: v for k, v in data.items() if k != "signature"})
    assert not KEY.public.verify({**data, "signature": "A" * 86})
    assert not KEY.public.verify({**data, "signature": "not base64!"})
    assert not KEY.public.verify({**data, "extra": 1})  # a member added after signing


def test_canonical_bytes_are_independent_of_order_and_exclude_the_signature() -> None:
    a = canonical_bytes({"b": 1, "a": {"y": 2.5, "x": "é"}, "signature": "zz"})
    b = canonical_bytes({"a": {"x": "é", "y": 2.5}, "b": 1})
    assert a == b == DOMAIN + '{"a":{"x":"é","y":2.5},"b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_bytes({"level": float("nan")})
    assert not KEY.public.verify({"level": float("nan"), "signature": "A" * 86})


def test_keys_are_saved_private_and_load_back(tmp_path: Path) -> None:
    private, public = tmp_path / "k" / "signing.key", tmp_path / "signing.pub"
    KEY.save(private)
    KEY.public.save(public)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    loaded = SigningKey.load(private)
    signed = loaded.sign_message(event(2))
    assert VerifyKey.load(public).verify_message(signed)
    assert VerifyKey.from_text(KEY.public.text) == KEY.public
    # an existing, world-readable file becomes private when a key is written over it
    private.chmod(0o644)
    KEY.save(private)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_wrong_key_material_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(SigningKeyError):
        SigningKey.load(junk)
    with pytest.raises(SigningKeyError):
        VerifyKey.load(junk)
    with pytest.raises(SigningKeyError):
        VerifyKey.from_text("abc")
    # a public key where a private one is expected, and the reverse
    KEY.public.save(tmp_path / "pub.pem")
    KEY.save(tmp_path / "priv.pem")
    with pytest.raises(SigningKeyError):
        SigningKey.load(tmp_path / "pub.pem")
    with pytest.raises(SigningKeyError):
        VerifyKey.load(tmp_path / "priv.pem")


def test_signing_does_not_change_the_message() -> None:
    message = event(5)
    signed = KEY.sign_message(message)
    assert signed.model_copy(update={"signature": None}) == message
    assert isinstance(signed, EventMessage)
