"""The migrations build exactly the schema the code declares, on each backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tryon_core.db import create_database, metadata


async def test_migrations_match_the_declared_schema(database_url: str) -> None:
    database = create_database(database_url)
    try:
        await database.upgrade()
        await database.upgrade()  # idempotent
        async with database.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        assert diff == []
    finally:
        await database.dispose()
