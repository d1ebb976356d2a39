"""The API's shape: every router is included, every route has a strict response model, the
hub does not import the console, and a router that fails to import fails start-up."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

import ouie.hub
import ouie.hub.routers
from ouie.hub.api import ROUTERS, create_app
from ouie.hub.service import Hub
from tests.hub.helpers import settings_for

#: routes that answer with something other than JSON (no response model)
NOT_JSON = {"/api/v1/stream", "/metrics"}
#: FastAPI's own 422 body for an invalid request (its shape, not one the hub defines)
FOREIGN = {"RequestInvalid"}


@pytest.fixture
def app(sqlite_url: str) -> Any:
    hub = Hub(settings_for(sqlite_url))
    yield create_app(hub, manage_hub=False)
    hub.close()


def _api_routes(app: Any) -> list[APIRoute]:
    return [r for r in app.routes if isinstance(r, APIRoute) and r.path not in {"/openapi.json"}]


def test_every_router_module_is_included() -> None:
    modules = [
        importlib.import_module(f"ouie.hub.routers.{info.name}")
        for info in pkgutil.iter_modules(ouie.hub.routers.__path__)
    ]
    with_router = [m for m in modules if hasattr(m, "router")]
    assert len(with_router) >= 11
    assert {id(m.router) for m in with_router} == {id(r) for r in ROUTERS}


def test_every_route_has_a_strict_response_model(app: Any) -> None:
    routes = _api_routes(app)
    assert len(routes) > 30
    for route in routes:
        if route.path in NOT_JSON:
            assert route.response_model is None, route.path
            continue
        model = route.response_model
        assert isinstance(model, type) and issubclass(model, BaseModel), route.path
        assert model.model_config.get("extra") == "forbid", (route.path, model)


def test_response_schemas_are_closed(app: Any) -> None:
    """Every response object the document describes rejects unknown keys, so schemathesis'
    response check catches a field added in code but not in the model."""
    schemas = app.openapi()["components"]["schemas"]
    responses = {
        ref.rsplit("/", 1)[-1]
        for path in app.openapi()["paths"].values()
        for op in path.values()
        for status, answer in op["responses"].items()
        if not status.startswith("422")
        for ref in _refs(answer)
    }
    assert {"IncidentDetail", "IncidentList", "SensorList", "DronePlan"} <= responses
    seen: set[str] = set()
    todo = list(responses - FOREIGN)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        schema = schemas[name]
        if schema.get("type") == "object" and "properties" in schema:
            assert schema.get("additionalProperties") is False, name
        todo += [r.rsplit("/", 1)[-1] for r in _refs(schema)]


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "path",
    sorted(p for p in Path(ouie.hub.__file__).parent.rglob("*.py") if p.name != "cli.py"),
    ids=lambda p: str(p.relative_to(Path(ouie.hub.__file__).parent)),
)
def test_the_hub_does_not_import_the_console(path: Path) -> None:
    """At any depth, function bodies and TYPE_CHECKING included; ``hub/cli.py`` is a
    composition root (``ouie hub`` serves the API with the console) and may."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    assert not {n for n in names if n == "ouie.web" or n.startswith("ouie.web.")}, path


def test_a_router_that_fails_to_import_fails_start_up() -> None:
    result = _run(
        "import sys\n"
        "sys.modules['ouie.hub.routers.verification'] = None  # as if its import failed\n"
        "import ouie.hub.api\n"
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "Error" in last and "ouie.hub.routers.verification" in last, result.stderr
