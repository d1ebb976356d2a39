"""Schemathesis against the hub's own OpenAPI document: no request makes the server fail.

Runs as an admin (API token) so every route's handler is reached, not just the guard.
``OUIE_SCHEMATHESIS_EXAMPLES`` raises the number of cases per operation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from ouie.core.timebase import utc_now  # noqa: E402
from ouie.hub import auth  # noqa: E402
from ouie.hub.api import create_app  # noqa: E402
from ouie.hub.service import Hub  # noqa: E402
from tests.hub.helpers import register_sensors, sensor_grid, settings_for  # noqa: E402

EXAMPLES = int(os.environ.get("OUIE_SCHEMATHESIS_EXAMPLES", "15"))
SKIP = {("GET", "/api/v1/stream")}  # an endless event stream; tested in the integration test


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("schemathesis")
    hub = Hub(settings_for(f"sqlite:///{folder / 'hub.sqlite3'}"))
    hub.prepare()
    register_sensors(hub, sensor_grid(4))
    with hub.sessions() as session, session.begin():
        user = auth.create_user(session, "root", "a long password", "admin", utc_now())
        token = auth.create_api_token(session, user, "schemathesis", utc_now())
    app = create_app(hub, manage_hub=False)
    yield {"hub": hub, "app": app, "token": token}
    hub.close()


def _fuzz(
    operation: Any, headers: dict[str, str], failures: list[str], statuses: list[int]
) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        response = case.call(headers=headers)
        statuses.append(response.status_code)
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except AssertionError as exc:
            failures.append(f"{label}: {exc}"[:500])

    check()


def test_no_server_errors(prepared: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", prepared["app"])
    headers = {"Authorization": f"Bearer {prepared['token']}"}
    failures: list[str] = []
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        _fuzz(operation, headers, failures, statuses)
    assert failures == []
    assert len(statuses) >= 3 * 20 and any(200 <= code < 300 for code in statuses)
    assert not any(code >= 500 for code in statuses)
