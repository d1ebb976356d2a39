"""Log scrubbing: try every usual way a credential ends up in a log line."""

from __future__ import annotations

import io
import logging

import pytest

from ouie.privacy.scrub import (
    MASK,
    ScrubbingFilter,
    install_log_scrubbing,
    is_secret_key,
    scrub,
    scrub_value,
)

SECRET = "S3cr3t-Value_42"

CASES = [
    (f"rtsp://admin:{SECRET}@10.0.0.5:554/stream1", "rtsp://admin:***@10.0.0.5:554/stream1"),
    (f"mqtts://node-1:{SECRET}@broker.example:8883", "mqtts://node-1:***@broker.example:8883"),
    (
        f"postgresql+psycopg://ouie:{SECRET}@db:5432/ouie",
        "postgresql+psycopg://ouie:***@db:5432/ouie",
    ),
    (
        f"https://vms.example/api?access_token={SECRET}&page=2",
        "https://vms.example/api?access_token=***&page=2",
    ),
    (f"https://x.example/hook?sig={SECRET}", "https://x.example/hook?sig=***"),
    (
        f"GET /cam?user=admin&password={SECRET} HTTP/1.1",
        "GET /cam?user=admin&password=*** HTTP/1.1",
    ),
    (f"Authorization: Bearer {SECRET}", "Authorization: Bearer ***"),
    ("Authorization: Basic YWRtaW46cGFzc3dvcmQ=", "Authorization: Basic ***"),
    (f"password={SECRET} user=bob", "password=*** user=bob"),
    (f'{{"password": "{SECRET}", "site": "a"}}', '{"password": "***", "site": "a"}'),
    (f"mqtt_password: {SECRET}", "mqtt_password: ***"),
    (f"X-API-Key: {SECRET}", "X-API-Key: ***"),
    (f"client_secret='{SECRET}'", "client_secret='***'"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_scrub_masks_credentials(text: str, expected: str) -> None:
    assert scrub(text) == expected
    assert scrub(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "mqtt://127.0.0.1:1883",
        "http://user@host/path",
        "basic authentication failed for user bob",
        "token expired",
        "keepalive_s=30 threshold=0.5",
        "event gunshot at 2026-01-01T00:00:00Z (score 0.93)",
    ],
)
def test_scrub_leaves_ordinary_text_alone(text: str) -> None:
    assert scrub(text) == text


def test_private_keys_are_removed() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----"
    out = scrub(f"loaded {pem} ok")
    assert "MIIEow" not in out and out.startswith("loaded -----BEGIN RSA PRIVATE KEY-----")


def test_scrub_value_walks_structures() -> None:
    data = {
        "camera": {"url": f"rtsp://a:{SECRET}@cam/1", "password": SECRET, "name": "north"},
        "tokens": [f"Bearer {SECRET}"],
        "api_key": None,
    }
    out = scrub_value(data)
    assert SECRET not in repr(out)
    assert out["camera"]["name"] == "north"
    assert out["camera"]["password"] == MASK
    assert out["api_key"] is None


def test_is_secret_key() -> None:
    for key in ("password", "mqtt_password", "x-api-key", "access_token", "client_secret"):
        assert is_secret_key(key), key
    for key in ("keepalive_s", "monkey", "site", "session_ttl_s", "tokenizer"):
        assert not is_secret_key(key), key


def test_log_lines_never_carry_credentials() -> None:
    logger = logging.getLogger("ouie.test.scrub")
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        filt = install_log_scrubbing(logger)
        assert install_log_scrubbing(logger) is filt  # idempotent
        logger.warning("camera %s unreachable", f"rtsp://admin:{SECRET}@10.0.0.9/ch1")
        logger.error("login failed: password=%s", SECRET)
        try:
            raise ConnectionError(f"cannot reach mqtts://hub:{SECRET}@broker:8883")
        except ConnectionError:
            logger.exception("broker down")
        logger.info("bad format %s %s", "only one")  # must not crash the filter
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert SECRET not in text
    assert "rtsp://admin:***@10.0.0.9/ch1" in text
    assert "mqtts://hub:***@broker:8883" in text
    assert isinstance(filt, ScrubbingFilter)
