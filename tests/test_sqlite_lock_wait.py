"""A SQLite writer waiting for another process's write lock holds nothing the event loop needs.

SQLite waits for a lock holding its connection's mutex, and anything touching that connection
meanwhile waits with it: freeing one of its cursors, which the garbage collector does on
whatever thread it runs on, the event loop's included. A writer that waited inside SQLite (its
busy handler, 30 s) could so freeze the event loop until it gave up; and the process holding
the lock, if it commits on that same loop (two gateways in one process, or the loop frozen
while the other process waits for us), could not let it go: every write stalled for the
whole timeout, then failed. The writer now waits on the event loop, between quick tries.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from tryon_core.db import engine as engine_module
from tryon_core.db.engine import create_database


def _connections_of(path: Path, *, besides: sqlite3.Connection) -> list[sqlite3.Connection]:
    """The open sqlite3 connections to ``path`` (the pool's), found as the collector finds them.

    By their type, not ``isinstance``: that looks through a weak proxy among the objects, which
    raises ``ReferenceError`` once its referent is gone."""
    return [
        found
        for found in gc.get_objects()
        if issubclass(type(found), sqlite3.Connection)
        and found is not besides
        and _is_open(found)
        and Path(found.execute("PRAGMA database_list").fetchone()[2]) == path
    ]


def _is_open(connection: sqlite3.Connection) -> bool:
    try:
        connection.in_transaction  # noqa: B018  (raises once closed)
    except sqlite3.ProgrammingError:
        return False
    return True


async def test_freeing_a_cursor_of_a_waiting_writer_does_not_wait_for_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the write lock; a transaction waits for it; meanwhile the event
    loop frees a cursor left over on the waiting connection (what the collector does); then the
    other process lets the lock go. The freeing is immediate and the transaction commits. (A
    wait inside SQLite kept the loop in the freeing until the wait gave up: a 503.)"""
    monkeypatch.setattr(engine_module, "_BUSY_TIMEOUT_MS", 4000)
    path = tmp_path / "tryon.db"
    database = create_database(f"sqlite+aiosqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None)  # "another process"
    try:
        async with database.transaction() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        # a statement left open on each pooled connection, to be freed while it waits
        leftovers = [
            raw.execute("SELECT 1 UNION ALL SELECT 2")
            for raw in _connections_of(path, besides=other)
        ]
        assert leftovers
        assert [cursor.fetchone() for cursor in leftovers] == [(1,)] * len(leftovers)
        other.execute("BEGIN IMMEDIATE")

        async def write() -> None:
            async with database.transaction() as conn:
                await conn.execute(text("INSERT INTO t (x) VALUES (1)"))

        writer = asyncio.create_task(write())
        await asyncio.sleep(0.5)  # the writer is waiting for the lock
        assert not writer.done()
        leftovers.clear()  # the cursors are freed here, on the event loop's thread
        other.execute("ROLLBACK")
        await writer
        async with database.reading() as conn:
            assert (await conn.execute(text("SELECT x FROM t"))).scalars().all() == [1]
    finally:
        other.close()
        await database.dispose()
