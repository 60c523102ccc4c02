"""Each pooled PostgreSQL connection is checked before it is handed out (one round trip, not
the three of SQLAlchemy's ``pool_pre_ping`` on asyncpg): one that died in the pool (a server
restart, a cut connection) is replaced before anyone uses it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.helpers import cut_backend
from tryon_core.db.engine import Database, create_database
from tryon_core.db.prepared import Prepared

pytestmark = pytest.mark.postgres
_BACKEND = Prepared(select(func.pg_backend_pid()))


async def _backend(database: Database) -> int:
    async with database.reading() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")))


async def test_a_connection_cut_in_the_pool_is_replaced_unseen(postgres_database_url: str) -> None:
    database = create_database(postgres_database_url, pool_size=1)
    try:
        for _ in range(3):  # each time at once: no wait, no error
            first = await _backend(database)
            await cut_backend(database, first)
            assert await _backend(database) != first
    finally:
        await database.dispose()


async def test_a_write_transaction_is_checked_by_its_begin(postgres_database_url: str) -> None:
    """A connection checked out for a write transaction is checked by BEGIN itself (no ping of
    its own): one cut in the pool is still replaced unseen, and the transaction is open on the
    server before its first statement, so a rollback takes back everything."""
    database = create_database(postgres_database_url, pool_size=1)
    try:
        async with database.transaction() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS begun (n integer)"))
        for _ in range(3):
            first = await _backend(database)
            await cut_backend(database, first)
            with pytest.raises(RuntimeError, match="taken back"):
                async with database.transaction() as conn:
                    row = (
                        await conn.execute(
                            text(
                                "SELECT pid, xact_start IS NOT NULL"
                                " AND xact_start < clock_timestamp()"
                                " FROM pg_stat_activity WHERE pid = pg_backend_pid()"
                            )
                        )
                    ).one()
                    assert row[0] != first
                    assert row[1]  # begun before this statement
                    await conn.execute(text("INSERT INTO begun VALUES (1)"))
                    raise RuntimeError("taken back")
        async with database.reading() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM begun")) == 0
    finally:
        async with database.transaction() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS begun"))
        await database.dispose()


async def test_a_write_transaction_costs_no_ping_of_its_own(postgres_database_url: str) -> None:
    """What the server is sent for a write transaction, on a connection checked out for it or
    on one kept from the last (``tryon_core.db.kept``): BEGIN, the statements, COMMIT; for a
    read: the ping, then its statements. (asyncpg's query logger sees the plain queries;
    statements with parameters go as prepared statements.)"""
    database = create_database(postgres_database_url, pool_size=1)
    sent: list[str] = []

    def log_queries(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(
            lambda record: sent.append(record.query)
        )

    event.listen(database.engine.sync_engine, "connect", log_queries)
    try:
        for _ in range(2):  # checked out, then kept
            async with database.transaction() as conn:
                await conn.execute(text("SELECT 41"))
            assert [query.strip(" ;").upper() for query in sent] == ["BEGIN", "COMMIT"]
            sent.clear()
        async with database.reading() as conn:
            await conn.execute(text("SELECT 42"))
        assert sent[0] == "SELECT 1"
    finally:
        await database.dispose()


async def test_a_read_is_checked_by_its_own_statement(postgres_database_url: str) -> None:
    """``Database.read`` (authentication) sends no ping: its first statement checks the
    connection. One cut in the pool fails that statement, is dropped, and the read runs again
    on a checked connection: the caller sees its answer, not an error."""
    database = create_database(postgres_database_url, pool_size=1)
    sent: list[str] = []

    async def backend(conn: AsyncConnection) -> int:
        return int(await _BACKEND.scalar(conn))  # as authentication reads: prepared

    try:
        async with database.reading() as conn:
            raw = await conn.get_raw_connection()
            raw.driver_connection.add_query_logger(lambda record: sent.append(record.query))
        first = await database.read(backend)
        assert [query.split()[1] for query in sent] == ["pg_backend_pid()"]  # no "SELECT 1"
        for _ in range(3):
            await cut_backend(database, first)
            replaced = await database.read(backend)
            assert replaced != first
            first = replaced
    finally:
        await database.dispose()
