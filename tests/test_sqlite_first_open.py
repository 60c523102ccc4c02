"""Several processes opening a new SQLite file at the same moment all start: the one that turns
it to WAL holds its lock, and the others wait for it instead of failing with "database is
locked" (SQLite answers so at once, without its busy handler)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_at_once

OPEN = (
    "import asyncio, sys, time\n"
    "from sqlalchemy import text\n"
    "from tryon_core.db import create_database\n"
    "async def main():\n"
    "    database = create_database(sys.argv[1])\n"
    "    await asyncio.sleep(float(sys.argv[2]) - time.time())\n"
    "    try:\n"
    "        async with database.transaction() as conn:\n"
    "            await conn.execute(text('CREATE TABLE IF NOT EXISTS t (n integer)'))\n"
    "    finally:\n"
    "        await database.dispose()\n"
    "asyncio.run(main())\n"
)


async def test_processes_opening_a_new_file_at_once_all_start(tmp_path: Path) -> None:
    for attempt in range(2):  # the race is a matter of microseconds: more than one new file
        url = f"sqlite+aiosqlite:///{tmp_path / f'new-{attempt}.sqlite'}"
        await run_at_once(OPEN, url, processes=8, lead_seconds=3)


async def test_turning_to_wal_waits_while_another_holds_the_file() -> None:
    """What the processes above may meet: "database is locked" at once from the journal mode
    change (not the busy handler's wait); the connection tries again until it passes."""
    import sqlite3

    from sqlalchemy.util import greenlet_spawn

    from tryon_core.db.engine import _into_wal

    class Cursor:
        def __init__(self, refusals: int) -> None:
            self.refusals, self.tries = refusals, 0

        def execute(self, statement: str) -> None:
            assert statement == "PRAGMA journal_mode=WAL"
            self.tries += 1
            if self.tries <= self.refusals:
                raise sqlite3.OperationalError("database is locked")

    cursor = Cursor(refusals=3)
    await greenlet_spawn(_into_wal, cursor)
    assert cursor.tries == 4

    class Broken(Cursor):
        def execute(self, statement: str) -> None:
            raise sqlite3.OperationalError("disk I/O error")

    try:
        await greenlet_spawn(_into_wal, Broken(0))
    except sqlite3.OperationalError as error:
        assert "disk I/O" in str(error)  # anything else is not waited for
    else:
        raise AssertionError("a disk error was swallowed")
