"""SQLite in a long-lived process (the gateway, a worker): commits on the event loop's thread
never checkpoint, and a thread of their own does (tryon_core.db.checkpoints)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from sqlalchemy import text

from tryon_core.db.engine import create_database

BLOB = 64 * 1024


async def _write(database, rows: int) -> set[int]:  # type: ignore[no-untyped-def]
    """Rows in transactions of their own; the threads their COMMITs ran on."""
    threads: set[int] = set()
    async with database.transaction() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS blobs (n integer, data blob)"))
    for n in range(rows):
        async with database.transaction() as conn:
            raw = (await conn.get_raw_connection()).driver_connection._conn
            raw.set_trace_callback(
                lambda sql: threads.add(threading.get_ident()) if sql == "COMMIT" else None
            )
            await conn.execute(
                text("INSERT INTO blobs VALUES (:n, randomblob(:size))"), {"n": n, "size": BLOB}
            )
    return threads


async def test_commits_on_the_loop_and_checkpoints_in_their_own_thread(tmp_path: Path) -> None:
    path = tmp_path / "own.sqlite"
    database = create_database(f"sqlite+aiosqlite:///{path}", own_checkpoints=True)
    try:
        threads = await _write(database, 200)  # ~13 MB: past an automatic checkpoint's 4 MB
        assert threads == {threading.get_ident()}
        assert database.checkpointer is not None
        # The rows reach the database file itself only by a checkpoint: no connection of the
        # gateway runs one (no automatic checkpoints), the checkpointer does, within seconds.
        async with asyncio.timeout(10):
            while path.stat().st_size < 200 * BLOB:  # noqa: ASYNC110 (a file, not an event)
                await asyncio.sleep(0.1)
        async with database.reading() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM blobs")) == 200
    finally:
        await database.dispose()
    assert database.checkpointer is not None and database.checkpointer.passes >= 1


async def test_without_its_own_checkpoints_a_commit_leaves_the_loop(tmp_path: Path) -> None:
    """A short-lived process (a CLI command) keeps SQLite's automatic checkpoints, which a
    COMMIT may run: on aiosqlite's thread."""
    database = create_database(f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite'}")
    try:
        threads = await _write(database, 3)
        assert threading.get_ident() not in threads
        assert database.checkpointer is None
    finally:
        await database.dispose()


async def test_a_database_never_used_starts_no_checkpoints(tmp_path: Path) -> None:
    """The checkpointer starts with the first connection: an app built and never started (a
    schema dump, a test) leaves no thread and makes no file."""
    path = tmp_path / "unused.sqlite"
    database = create_database(f"sqlite+aiosqlite:///{path}", own_checkpoints=True)
    await database.dispose()
    assert database.checkpointer is not None and database.checkpointer.passes == 0
    assert not path.exists()
