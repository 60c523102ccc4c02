"""A cancelled request never leaves the database half-way (issue 15, findings 2 and 3).

A client that hangs up cancels its request's task wherever it is: checking out a connection,
in BEGIN IMMEDIATE, between statements, inside COMMIT, returning the connection. Whatever the
moment, the transaction either committed whole or not at all, the connection is back in its
pool and nothing holds SQLite's write lock afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from sqlalchemy import text

from tryon_core.db.engine import Database, create_database, sqlite_takes_a_write


async def _database(url: str) -> Database:
    database = create_database(url)
    await database.upgrade()
    async with database.transaction() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS probe (n INTEGER)"))
    return database


async def _write(database: Database, n: int) -> None:
    async with database.transaction() as conn:
        await conn.execute(text("INSERT INTO probe (n) VALUES (:n)"), {"n": n})
        await conn.execute(text("INSERT INTO probe (n) VALUES (:n)"), {"n": -n})


async def _read(database: Database) -> list[int]:
    async with database.reading() as conn:
        return [row.n for row in await conn.execute(text("SELECT n FROM probe"))]


def _can_write(path: Path) -> bool:
    """Another connection takes SQLite's write lock within a few seconds.

    Not at once: a task cancelled inside one of SQLAlchemy's executions has its connection
    invalidated, and if cancelled again while that connection closes, SQLAlchemy stops waiting
    and leaves the close (and its rollback) to aiosqlite's thread, a moment later
    (``AsyncAdapt_terminate.terminate``). A lock held for good still fails here."""
    return sqlite_takes_a_write(path, wait=5.0)


@pytest.mark.parametrize("step", range(0, 40))
async def test_a_transaction_cancelled_at_any_step_leaves_nothing_held(
    database_url: str, step: int
) -> None:
    """Cancel after ``step`` turns of the event loop: every step of a transaction is hit."""
    database = await _database(database_url)
    try:
        task = asyncio.ensure_future(_write(database, step + 1))
        for _ in range(step):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # a write that finished first is not cancelled: both outcomes are fine
        rows = await _read(database)
        assert sorted(rows) in ([], [-(step + 1), step + 1]), "a transaction went half-way"
        assert database.connections_in_use() == 0, "a connection was never returned"
        if database.is_sqlite:
            assert _can_write(Path(database.engine.url.database or "")), "write lock held"
        await asyncio.wait_for(_write(database, 1000), timeout=30)  # the writer is free
    finally:
        await database.dispose()


async def test_cancellations_arriving_in_bursts_never_stall_the_writer(database_url: str) -> None:
    """Many writers cancelled at random moments, as a burst of hang-ups does."""
    database = await _database(database_url)
    try:
        for round_ in range(10):
            tasks = [asyncio.ensure_future(_write(database, n)) for n in range(1, 21)]
            for index, task in enumerate(tasks):
                for _ in range((index * 7 + round_) % 13):
                    await asyncio.sleep(0)
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            assert database.connections_in_use() == 0
        rows = await _read(database)
        assert sum(rows) == 0, "every committed transaction wrote both of its rows"
        if database.is_sqlite:
            assert _can_write(Path(database.engine.url.database or ""))
    finally:
        await database.dispose()


@pytest.mark.parametrize("step", range(0, 30, 3))
async def test_a_transaction_cancelled_again_and_again_still_ends_whole(
    database_url: str, step: int
) -> None:
    """Cancelled at every turn of the loop from ``step`` on, as a cancel scope re-delivers a
    cancellation until the task stops: the rollback or commit and the connection's return
    still complete, and nothing holds the write lock."""
    database = await _database(database_url)
    try:
        task = asyncio.ensure_future(_write(database, step + 1))
        for _ in range(step):
            await asyncio.sleep(0)
        for _ in range(10_000):
            if task.done():
                break
            task.cancel()
            await asyncio.sleep(0)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert sorted(await _read(database)) in ([], [-(step + 1), step + 1])
        assert database.connections_in_use() == 0, "a connection was never returned"
        if database.is_sqlite:
            assert _can_write(Path(database.engine.url.database or "")), "write lock held"
    finally:
        await database.dispose()
