"""What a test needs from outside the Python code under test, checked in one place.

A test says what it needs: ``@pytest.mark.needs("postgresql")`` (the check runs before the
test's fixtures), or a call to :func:`need` / :func:`require_service` / :func:`require_module`
from a test or fixture. Data from ``../shared`` goes through :func:`require_shared`.

When something is missing, the test is skipped with the reason, so ``bash scripts/test.sh``
passes on a fresh clone without the services. In CI, ``.ci/run`` sets
``OUIE_REQUIRE_SERVICES=1`` and ``OUIE_REQUIRE_SHARED=1``: the same test then **fails**,
naming what is missing, so a CI machine that lost a service cannot pass by skipping.

A service that is there but unusable (PostgreSQL answering with a wrong password or no
database ``test``, the database driver not installed, a package that fails to import) is
always a failure with the real error: that is a broken set-up, not a missing one.

``python3 -m tests._services`` prints one line naming what is missing on this machine
(``scripts/test.sh`` shows it before running the tests) and exits 0 either way.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

REQUIRE_SERVICES = "OUIE_REQUIRE_SERVICES"
REQUIRE_SHARED = "OUIE_REQUIRE_SHARED"

PG_URL = os.environ.get("OUIE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CHROMIUM = Path("/usr/bin/chromium")
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
INSTALL = "bash scripts/test.sh installs it as root; or apt-get install"


class Misconfigured(Exception):
    """A service is there but cannot be used: always a failure, never a skip."""


def _missing(env: str, message: str) -> NoReturn:
    if os.environ.get(env) == "1":
        pytest.fail(f"{message} [{env}=1: missing means failure]", pytrace=False)
    pytest.skip(message)


def require_service(name: str, available: bool, reason: str) -> None:
    """Skip the calling test when ``name`` is not available; fail it instead under
    ``OUIE_REQUIRE_SERVICES=1``. Call it from a test or fixture, not at import time (a
    failure while collecting would stop the whole run)."""
    if not available:
        _missing(REQUIRE_SERVICES, f"{name} is missing: {reason}")


def require_shared(path: Path, what: str) -> Path:
    """``path`` from ``../shared``; skip without it, fail under ``OUIE_REQUIRE_SHARED=1``."""
    if path.exists():
        return path
    _missing(
        REQUIRE_SHARED,
        f"{what} not found at {path} (set OUIE_SHARED_DIR or clone beside ../shared)",
    )


def require_module(module: str, reason: str) -> ModuleType:
    """``import module`` for a test; a package that is not installed counts as a missing
    service (skip, or fail under ``OUIE_REQUIRE_SERVICES=1``). An installed package that
    fails to import raises its real error."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        _missing(REQUIRE_SERVICES, f"Python module {exc.name or module} is missing: {reason}")


# ------------------------------------------------------------------------- the services


def _postgresql() -> str | None:
    try:
        from sqlalchemy import create_engine, make_url, text

        url = make_url(PG_URL)
        engine = create_engine(url)  # imports the driver (psycopg)
    except Exception as exc:
        raise Misconfigured(
            f"PostgreSQL: {PG_URL} cannot be used: {type(exc).__name__}: {exc}"
        ) from exc
    host, port = url.host or "127.0.0.1", url.port or 5432
    try:
        socket.create_connection((host, port), timeout=2.0).close()
    except OSError as exc:
        engine.dispose()
        return (
            f"nothing listens on {host}:{port} ({exc.strerror or exc}); the tests want a "
            "PostgreSQL there with trust auth and a database 'test' (or OUIE_TEST_PG_URL)"
        )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise Misconfigured(
            f"PostgreSQL answers on {host}:{port} but {url.render_as_string()} cannot be "
            f"used: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        engine.dispose()
    return None


def _fanotify() -> str | None:
    from ouie.compliance.fswatch import FileWatch

    try:
        with FileWatch([Path("/tmp")], method="fanotify"):
            return None
    except OSError as exc:
        return f"fanotify cannot watch here ({exc}); it needs CAP_SYS_ADMIN (root in CI)"


def _package(module: str, extra: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        if importlib.util.find_spec(module) is not None:
            return None
        return f"Python package {module} is not installed (pip install -e '.[{extra}]')"

    return probe


def _mosquitto() -> str | None:
    return None if MOSQUITTO else f"no mosquitto on PATH or in /usr/sbin ({INSTALL} mosquitto)"


def _chromium() -> str | None:
    return None if CHROMIUM.exists() else f"no Chromium at {CHROMIUM} ({INSTALL} chromium)"


def _espeak() -> str | None:
    return None if shutil.which("espeak-ng") else f"no espeak-ng on PATH ({INSTALL} espeak-ng)"


SERVICES: dict[str, Callable[[], str | None]] = {
    "postgresql": _postgresql,
    "mosquitto": _mosquitto,
    "chromium": _chromium,
    "espeak-ng": _espeak,
    "fanotify": _fanotify,
    "playwright": _package("playwright", "dev"),
    "pymavlink": _package("pymavlink", "verify"),
    "onvif": _package("onvif", "verify"),
    "torch": _package("torch", "train"),
}
"""Each service's probe: ``None`` when it is there, else why not (raises
:class:`Misconfigured` when it is there but broken)."""

_probed: dict[str, str | Misconfigured | None] = {}


def missing(name: str) -> str | None:
    """Why ``name`` is missing (``None``: it is there), probed once per process."""
    if name not in SERVICES:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
    if name not in _probed:
        try:
            _probed[name] = SERVICES[name]()
        except Misconfigured as exc:
            _probed[name] = exc
    outcome = _probed[name]
    if isinstance(outcome, Misconfigured):
        raise outcome
    return outcome


def need(*names: str) -> None:
    """Skip (or fail, see :func:`require_service`) unless every service named is there."""
    for name in names:
        try:
            why = missing(name)
        except (KeyError, Misconfigured) as exc:
            pytest.fail(str(exc.args[0]), pytrace=False)
        require_service(name, why is None, why or "")


def pg_available() -> bool:
    """True when PostgreSQL can be used; False when nothing listens there. A PostgreSQL that
    answers but refuses the tests (password, database, driver) raises :class:`Misconfigured`."""
    return missing("postgresql") is None


# ------------------------------------------------------------------- the pytest plugin


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs(*services): services the test needs (tests/_services.py SERVICES); missing "
        "ones skip it, or fail it under OUIE_REQUIRE_SERVICES=1",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("needs"):
        try:
            need(*marker.args)
        except pytest.skip.Exception as skipped:
            # Report the skip at the test, not here, as pytest's own skipif marker does
            # (the same private flag; without it -rs lumps every such skip on one line).
            skipped._use_item_location = True
            raise


# --------------------------------------------------------------- the one-line summary


def summary() -> str | None:
    """One line naming what is missing or broken on this machine; ``None`` if nothing is."""
    absent: list[str] = []
    broken: list[str] = []
    for name in SERVICES:
        try:
            if missing(name) is not None:
                absent.append(name)
        except Misconfigured as exc:
            broken.append(f"{name} ({str(exc).splitlines()[0]})")
    parts: list[str] = []
    if absent:
        if os.environ.get(REQUIRE_SERVICES) == "1":
            then = f"their tests will FAIL ({REQUIRE_SERVICES}=1)"
        else:
            then = f"their tests will skip ({REQUIRE_SERVICES}=1 makes them fail)"
        parts.append(f"services missing: {', '.join(absent)}; {then}")
    if broken:
        parts.append(f"services broken, their tests will FAIL: {'; '.join(broken)}")
    return "note: " + ". ".join(parts) if parts else None


if __name__ == "__main__":
    line = summary()
    if line is not None:
        print(line, file=sys.stderr)
