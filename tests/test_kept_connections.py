"""Write transactions keep their connection checked out for the next one
(``tryon_core.db.kept``): the next transaction runs on it, a kept PostgreSQL connection that
died is replaced unseen, a transaction that fails gives its connection back to the pool, at
most ``keep`` stay idle, and none outlives the database."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.helpers import cut_backend, eventually
from tryon_core.db.engine import Database, create_database

_PID = text("SELECT pg_backend_pid()")


async def _write(database: Database, n: int) -> None:
    async with database.transaction() as conn:
        await conn.execute(text("INSERT INTO kept (n) VALUES (:n)"), {"n": n})


async def _writer_pid(database: Database, n: int) -> int:
    async with database.transaction() as conn:
        await conn.execute(text("INSERT INTO kept (n) VALUES (:n)"), {"n": n})
        return int(await conn.scalar(_PID))


async def _count(database: Database) -> int:
    async with database.reading() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM kept")))


async def _database(url: str, **options: int) -> Database:
    database = create_database(url, **options)
    async with database.transaction() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS kept (n integer PRIMARY KEY)"))
        await conn.execute(text("DELETE FROM kept"))
    await database.dispose()
    return create_database(url, **options)


async def _driver(conn: AsyncConnection) -> object:
    return (await conn.get_raw_connection()).driver_connection


async def test_the_next_write_transaction_runs_on_the_kept_connection(database_url: str) -> None:
    database = await _database(database_url)
    try:
        async with database.transaction() as conn:
            first = await _driver(conn)
        assert database.connections_in_use() == 0
        assert database.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        for n in range(3):
            async with database.transaction() as conn:
                assert await _driver(conn) is first
                await conn.execute(text("INSERT INTO kept (n) VALUES (:n)"), {"n": n})
            assert await _count(database) == n + 1  # committed
        with pytest.raises(RuntimeError):
            async with database.transaction() as conn:
                await conn.execute(text("INSERT INTO kept (n) VALUES (9)"))
                raise RuntimeError("the caller gives up")
        assert await _count(database) == 3  # rolled back
        assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await database.dispose()
    assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.postgres
async def test_a_postgresql_transaction_is_begun_on_the_server_at_once(
    postgres_database_url: str,
) -> None:
    database = await _database(postgres_database_url)
    try:
        for _ in range(3):  # checked out, then kept
            async with database.transaction() as conn:
                begun = await conn.scalar(
                    text(
                        "SELECT xact_start < statement_timestamp() FROM pg_stat_activity"
                        " WHERE pid = pg_backend_pid()"
                    )
                )
                assert begun  # before its first statement
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_a_kept_connection_that_died_is_replaced_unseen(postgres_database_url: str) -> None:
    database = await _database(postgres_database_url)
    try:
        first = await _writer_pid(database, 1)
        for n in range(3):
            await cut_backend(database, first)
            replaced = await _writer_pid(database, n + 2)  # no error: another one serves
            assert replaced != first
            first = replaced
            assert await _count(database) == n + 2
        assert database.connections_in_use() == 0
    finally:
        await database.dispose()


async def test_a_transaction_that_fails_gives_its_connection_back(database_url: str) -> None:
    database = await _database(database_url)
    try:
        await _write(database, 1)
        with pytest.raises(IntegrityError):
            async with database.transaction() as conn:
                await conn.execute(text("INSERT INTO kept (n) VALUES (1)"))  # taken: n is 1
        assert database.connections_in_use() == 0
        with pytest.raises(RuntimeError):
            async with database.transaction() as conn:
                await conn.execute(text("INSERT INTO kept (n) VALUES (2)"))
                raise RuntimeError("the caller gives up")
        assert database.connections_in_use() == 0
        assert await _count(database) == 1  # neither wrote anything
        async with database.transaction() as conn:  # the pool's connections still serve
            await conn.execute(text("INSERT INTO kept (n) VALUES (3)"))
        assert await _count(database) == 2
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_at_most_keep_connections_stay_idle(postgres_database_url: str) -> None:
    database = await _database(postgres_database_url, pool_size=8)
    assert database.keep == 2
    released = asyncio.Event()

    async def write(n: int) -> None:
        async with database.transaction() as conn:
            await conn.execute(text("INSERT INTO kept (n) VALUES (:n)"), {"n": n})
            await released.wait()  # all six in their transactions at once

    try:
        tasks = [asyncio.create_task(write(n)) for n in range(10, 16)]
        await eventually(lambda: database.connections_in_use() == 6)
        released.set()
        await asyncio.gather(*tasks)
        assert database.connections_in_use() == 0
        assert database.engine.pool.checkedout() == 2  # type: ignore[attr-defined]
        assert await _count(database) == 6
    finally:
        await database.dispose()
    assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
