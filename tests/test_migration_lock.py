"""Many processes starting at once on a fresh database migrate it once (a lock), on each backend."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from tests.helpers import ROOT
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
    at = str(time.time() + 8)  # every process has started by then
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            UPGRADE,
            database_url,
            at,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = await asyncio.gather(*(process.communicate() for process in processes))
    for process, (output, _) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output.decode()[-3000:]
    await _migrated_once(database_url)
