"""Each pooled PostgreSQL connection is checked before it is handed out (one round trip, not
the three of SQLAlchemy's ``pool_pre_ping`` on asyncpg): one that died in the pool (a server
restart, a cut connection) is replaced before anyone uses it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tryon_core.db.engine import Database, create_database

pytestmark = pytest.mark.postgres


async def _backend(database: Database) -> int:
    async with database.reading() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")))


async def _cut(database: Database, pid: int) -> None:
    """End the server side of connection ``pid`` from a connection outside the pool."""
    plain = await database.connect_plain(application_name="tryon-test-cut")
    try:
        assert await plain.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await plain.close()


async def test_a_connection_cut_in_the_pool_is_replaced_unseen(postgres_database_url: str) -> None:
    database = create_database(postgres_database_url, pool_size=1)
    try:
        for _ in range(3):  # each time at once: no wait, no error
            first = await _backend(database)
            await _cut(database, first)
            assert await _backend(database) != first
    finally:
        await database.dispose()
