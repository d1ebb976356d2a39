"""Secrets at rest: Fernet tokens, key loading, rotation, nothing leaks in messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from ouie.verify.credentials import SecretBox, SecretKeyError


def test_round_trip_and_hidden_values(box: SecretBox) -> None:
    token = box.encrypt("hunter2")
    assert token.startswith("gAAAAA") and "hunter2" not in token
    secret = box.decrypt(token)
    assert secret.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)
    assert "keys hidden" in repr(box)


def test_wrong_key_message_has_no_secret(box: SecretBox) -> None:
    token = box.encrypt("hunter2")
    other = SecretBox(SecretBox.generate_key())
    with pytest.raises(SecretKeyError) as info:
        other.decrypt(token)
    assert "hunter2" not in str(info.value) and token not in str(info.value)


def test_rotation_keeps_old_tokens_readable(box: SecretBox) -> None:
    old_key = SecretBox.generate_key()
    old = SecretBox(old_key)
    token = old.encrypt("camera-pw")
    new_key = SecretBox.generate_key()
    both = SecretBox(f"{new_key},{old_key}")
    assert both.decrypt(token).get_secret_value() == "camera-pw"
    rotated = both.rotate(token)
    assert SecretBox(new_key).decrypt(rotated).get_secret_value() == "camera-pw"


def test_load_from_env_and_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = SecretBox.generate_key()
    monkeypatch.delenv("OUIE_SECRET_KEY", raising=False)
    with pytest.raises(SecretKeyError, match="OUIE_SECRET_KEY"):
        SecretBox.load(None)
    path = tmp_path / "secret.key"
    path.write_text(key + "\n")
    path.chmod(0o644)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        SecretBox.load(path)
    path.chmod(0o600)
    token = SecretBox.load(path).encrypt("x")
    monkeypatch.setenv("OUIE_SECRET_KEY", key)
    assert SecretBox.load(None).decrypt(token).get_secret_value() == "x"
    with pytest.raises(SecretKeyError, match="not a Fernet key"):
        SecretBox("not-a-key")
