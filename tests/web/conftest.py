from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.web.hubenv import HubEnv, client_hub


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[HubEnv, TestClient]]:
    with client_hub(tmp_path) as pair:
        yield pair
