"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from factory.store.db import Database, migrate
from factory.store.tables import metadata


def test_migrated_schema_matches_the_tables(db: Database) -> None:
    migrate(db)  # a second run is a no-op
    with db.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, metadata)
    assert diff == []
