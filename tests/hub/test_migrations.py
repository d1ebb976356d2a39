"""The packaged Alembic migrations produce exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ouie.hub.db import Base, make_engine, migrate


def test_sqlite_migrations_match_models(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    migrate(engine)
    migrate(engine)  # idempotent
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []
