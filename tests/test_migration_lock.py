"""Many processes starting at once on a fresh database migrate it once (a lock), on each backend."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from tests.helpers import run_at_once
from tryon_core.db import create_database, metadata

UPGRADE = (  # each process, once imported, waits for the same moment (argv[2]), then migrates
    "import asyncio, sys, time\n"
    "from tryon_core.db import create_database\n"
    "async def main():\n"
    "    database = create_database(sys.argv[1])\n"
    "    await asyncio.sleep(float(sys.argv[2]) - time.time())\n"
    "    try:\n"
    "        await database.upgrade()\n"
    "    finally:\n"
    "        await database.dispose()\n"
    "asyncio.run(main())\n"
)


async def _migrated_once(url: str) -> None:
    database = create_database(url)
    try:
        async with database.engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        assert len(versions) == 1
        assert diff == []
    finally:
        await database.dispose()


async def test_engines_migrating_at_once_migrate_once(database_url: str) -> None:
    databases = [create_database(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(database.upgrade() for database in databases))
    finally:
        for database in databases:
            await database.dispose()
    await _migrated_once(database_url)


async def test_processes_migrating_at_once_migrate_once(database_url: str) -> None:
    await run_at_once(UPGRADE, database_url, processes=4, lead_seconds=8)
    await _migrated_once(database_url)
