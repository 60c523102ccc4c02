"""A connection's steps that fail still give the connection back.

A transaction's life is two steps run to their end: the checkout with its BEGIN, then the COMMIT
(or ROLLBACK) with the return to the pool. When the BEGIN or the COMMIT fails, the connection
goes back to its pool all the same, nothing keeps SQLite's write lock, the caller is answered
with the error (a lock held elsewhere for too long: 503), and the next transaction runs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tryon_core.db import engine as engine_module
from tryon_core.db.engine import Database, create_database, sqlite_takes_a_write
from tryon_core.errors import ServiceUnavailable

_TABLES = (
    "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
    # checked at COMMIT, not at the INSERT: a COMMIT that fails
    "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
)


async def _database(url: str, *, own_checkpoints: bool = False) -> Database:
    database = create_database(url, own_checkpoints=own_checkpoints)
    async with database.transaction() as conn:
        for statement in _TABLES:
            await conn.execute(text(statement))
    return database


async def _children(database: Database) -> list[int]:
    async with database.reading() as conn:
        return [row.parent_id for row in await conn.execute(text("SELECT parent_id FROM child"))]


async def _commit_fails(database: Database, path: Path) -> None:
    with pytest.raises(IntegrityError):
        async with database.transaction() as conn:
            await conn.execute(text("INSERT INTO child (parent_id) VALUES (42)"))
    assert database.connections_in_use() == 0
    if database.is_sqlite:
        assert sqlite_takes_a_write(path)
    async with database.transaction() as conn:  # the next one runs, and commits
        await conn.execute(text("INSERT INTO parent (id) VALUES (7)"))
        await conn.execute(text("INSERT INTO child (parent_id) VALUES (7)"))
    assert await _children(database) == [7]
    assert database.connections_in_use() == 0


async def test_a_commit_that_fails_gives_the_connection_back(
    database_url: str, tmp_path: Path
) -> None:
    database = await _database(database_url)
    try:
        await _commit_fails(database, tmp_path / "tryon.db")
    finally:
        await database.dispose()


async def test_a_commit_on_the_event_loops_thread_that_fails_gives_the_connection_back(
    tmp_path: Path,
) -> None:
    """SQLite with its own checkpoints (the gateway's): COMMIT runs on the event loop's thread."""
    path = tmp_path / "tryon.db"
    database = await _database(f"sqlite+aiosqlite:///{path}", own_checkpoints=True)
    try:
        await _commit_fails(database, path)
    finally:
        await database.dispose()


async def test_a_begin_that_fails_gives_the_connection_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds SQLite's write lock past the busy timeout: the BEGIN IMMEDIATE
    fails (503), its connection is back in the pool, and once the lock is free writes go on."""
    monkeypatch.setattr(engine_module, "_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "tryon.db"
    database = await _database(f"sqlite+aiosqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        for _ in range(3):
            with pytest.raises(ServiceUnavailable):
                async with database.transaction() as conn:
                    await conn.execute(text("INSERT INTO parent (id) VALUES (1)"))
            assert database.connections_in_use() == 0
        assert await _children(database) == []  # reads go on meanwhile (WAL)
        other.execute("ROLLBACK")
        async with database.transaction() as conn:
            await conn.execute(text("INSERT INTO parent (id) VALUES (1)"))
        assert database.connections_in_use() == 0
        assert sqlite_takes_a_write(path)
    finally:
        other.close()
        await database.dispose()
