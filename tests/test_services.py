"""The helper every service check goes through (tests/_services.py): a missing service skips
the test, or fails it under OUIE_REQUIRE_SERVICES=1; a misconfigured one always fails."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import _services
from tests._services import (
    REQUIRE_SERVICES,
    REQUIRE_SHARED,
    need,
    require_module,
    require_service,
    require_shared,
)

pytest_plugins = ["pytester"]


def outcome(call: Callable[[], Any]) -> tuple[str, str]:
    """("skip" | "fail" | "ok", message) of ``call``: caught here, so that a helper that skips
    where it should fail makes these tests fail instead of skipping them too."""
    try:
        call()
    except pytest.skip.Exception as exc:
        return "skip", str(exc)
    except pytest.fail.Exception as exc:
        return "fail", str(exc)
    return "ok", ""


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Neither variable set, and probes run afresh (the cache is restored afterwards)."""
    monkeypatch.delenv(REQUIRE_SERVICES, raising=False)
    monkeypatch.delenv(REQUIRE_SHARED, raising=False)
    monkeypatch.setattr(_services, "_probed", {})
    yield


def test_an_available_service_neither_skips_nor_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    assert outcome(lambda: require_service("broker", True, "never shown")) == ("ok", "")
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    assert outcome(lambda: require_service("broker", True, "never shown")) == ("ok", "")


@pytest.mark.parametrize("value", [None, "0", ""])
def test_a_missing_service_skips_with_its_name_and_reason(
    value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is not None:
        monkeypatch.setenv(REQUIRE_SERVICES, value)
    got = outcome(lambda: require_service("broker", False, "nothing listens on :1883"))
    assert got == ("skip", "broker is missing: nothing listens on :1883")


def test_a_missing_service_fails_under_require_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    kind, message = outcome(lambda: require_service("broker", False, "nothing listens on :1883"))
    assert kind == "fail"
    assert "broker is missing: nothing listens on :1883" in message
    assert f"{REQUIRE_SERVICES}=1" in message


def test_require_shared_skips_then_fails_under_its_own_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert require_shared(tmp_path, "a folder") == tmp_path
    absent = tmp_path / "models"
    monkeypatch.setenv(REQUIRE_SERVICES, "1")  # the other variable changes nothing here
    kind, message = outcome(lambda: require_shared(absent, "shared models"))
    assert (kind, message.startswith(f"shared models not found at {absent}")) == ("skip", True)
    monkeypatch.setenv(REQUIRE_SHARED, "1")
    kind, message = outcome(lambda: require_shared(absent, "shared models"))
    assert kind == "fail" and f"{REQUIRE_SHARED}=1" in message


def test_require_module_returns_the_module_or_counts_it_as_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert require_module("json", "stdlib").dumps([]) == "[]"
    kind, message = outcome(lambda: require_module("ouie_no_such_package.sub", "never existed"))
    assert kind == "skip" and "ouie_no_such_package is missing: never existed" in message
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    kind, message = outcome(lambda: require_module("ouie_no_such_package", "never existed"))
    assert kind == "fail" and "ouie_no_such_package is missing" in message


def test_need_uses_the_probe_and_rejects_unknown_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_services.SERVICES, "imaginary", lambda: "it was never installed")
    assert outcome(lambda: need("imaginary")) == (
        "skip",
        "imaginary is missing: it was never installed",
    )
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    kind, message = outcome(lambda: need("imaginary"))
    assert kind == "fail" and "imaginary is missing" in message
    kind, message = outcome(lambda: need("imagined"))
    assert kind == "fail" and "unknown service 'imagined'" in message


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: connecting is refused


def test_postgresql_not_running_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test"
    monkeypatch.setattr(_services, "PG_URL", url)
    assert _services.pg_available() is False
    kind, message = outcome(lambda: need("postgresql"))
    assert kind == "skip" and "postgresql is missing: nothing listens on 127.0.0.1" in message
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    kind, message = outcome(lambda: need("postgresql"))
    assert kind == "fail" and "postgresql is missing" in message


def test_postgresql_without_its_driver_always_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL naming a driver that is not installed is a broken set-up, not a missing service:
    it fails with the real error even without OUIE_REQUIRE_SERVICES."""
    url = f"postgresql+nosuchdriver://postgres@127.0.0.1:{_closed_port()}/test"
    monkeypatch.setattr(_services, "PG_URL", url)
    with pytest.raises(_services.Misconfigured, match="NoSuchModuleError"):
        _services.pg_available()
    kind, message = outcome(lambda: need("postgresql"))
    assert kind == "fail" and "cannot be used: NoSuchModuleError" in message


@pytest.mark.needs("postgresql")
def test_postgresql_without_the_database_always_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL answers but the database is not there: the real error, not a skip."""
    url = _services.PG_URL.rsplit("/", 1)[0] + "/ouie_no_such_database"
    monkeypatch.setattr(_services, "PG_URL", url)
    kind, message = outcome(lambda: need("postgresql"))
    assert kind == "fail" and 'database "ouie_no_such_database" does not exist' in message


INNER = """
import pytest
from tests import _services

_services.SERVICES["imaginary"] = lambda: "it was never installed"


@pytest.fixture
def costly():
    raise AssertionError("fixtures run after the needs(...) check")


@pytest.mark.needs("imaginary")
def test_needs_it(costly):
    pass


def test_needs_nothing():
    pass
"""


@pytest.mark.slow
def test_the_needs_marker_skips_or_fails_before_fixtures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The marker end to end, in a pytest run of its own (a separate process, so the fake
    service stays there)."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    pytester.makepyfile(test_inner=INNER)
    skipped = pytester.runpytest_subprocess("-p", "tests._services", "-rs")
    skipped.assert_outcomes(passed=1, skipped=1)
    skipped.stdout.fnmatch_lines(["*imaginary is missing: it was never installed*"])
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    failed = pytester.runpytest_subprocess("-p", "tests._services")
    failed.assert_outcomes(passed=1, errors=1)
    failed.stdout.fnmatch_lines(["*imaginary is missing*OUIE_REQUIRE_SERVICES=1*"])
