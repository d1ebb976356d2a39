from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ouie.hub.service import Hub
from tests.hub.helpers import settings_for


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.sqlite3'}"


@pytest.fixture
def hub(sqlite_url: str) -> Iterator[Hub]:
    instance = Hub(settings_for(sqlite_url))
    instance.prepare()
    yield instance
    instance.close()
