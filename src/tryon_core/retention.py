"""Delete what has outlived its retention: result files (rows and bytes), idempotency keys, and
files in the store that no row refers to.

A file is put in the store before the row that refers to it is written, in the same request
or job. A process that dies (or a request cut off) between the two leaves an orphan: bytes that
no row will ever delete. :func:`sweep_orphans` lists the store and deletes those older than
:func:`orphan_grace`, which is never shorter than a request or job could still be running.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from tryon_core.db.schema import files
from tryon_core.gateway import Gateway
from tryon_core.idempotency import max_wait, purge_expired_keys
from tryon_core.ids import utcnow
from tryon_core.storage import StoredFile

__all__ = ["orphan_grace", "purge_expired", "run_retention", "sweep_orphans"]

log = logging.getLogger("tryon.retention")

ORPHAN_MARGIN = timedelta(hours=1)
"""Added to the longest run: room for a database that is slow to take the row's write."""

_FILE_NAME = re.compile(r"\.?(file_[A-Za-z0-9_-]+)\.[a-z0-9]+(?:\.[0-9a-f]+\.tmp)?")
"""The name the pipeline gives a stored image (``file_ID.png``), or the local store's
temporary file for one (``.file_ID.png.HEX.tmp``). Nothing else in the store is ever swept:
the signing secret, or a file someone put in the folder, stays."""


async def purge_expired(gateway: Gateway, *, batch: int = 500) -> int:
    """Remove up to ``batch`` expired files: their rows first, in one conditional statement,
    then the bytes of exactly those rows. Several processes purging at once each delete what
    their own statement took; bytes whose deletion fails become orphans, which
    :func:`sweep_orphans` removes later. Returns how many were removed."""
    expired = select(files.c.id).where(files.c.expires_at < utcnow()).limit(batch)
    async with gateway.database.transaction() as conn:
        keys = (
            await conn.scalars(
                delete(files).where(files.c.id.in_(expired)).returning(files.c.storage_key)
            )
        ).all()
    for key in keys:
        await gateway.store.delete(key)
    return len(keys)


def orphan_grace(gateway: Gateway) -> timedelta:
    """How old a file without a row must be to be deleted: ``[storage] orphan_grace_hours``,
    but never less than the longest a request or a job may run (its files are stored before
    its row is written) plus :data:`ORPHAN_MARGIN`."""
    settings = gateway.settings
    longest = max(settings.jobs.deadline_seconds, max_wait(gateway))
    return max(
        timedelta(hours=settings.storage.orphan_grace_hours),
        timedelta(seconds=longest) + ORPHAN_MARGIN,
    )


async def sweep_orphans(gateway: Gateway, *, batch: int = 500) -> int:
    """Delete stored files older than :func:`orphan_grace` that no ``files`` row refers to.

    The store is listed as a stream and compared with the database ``batch`` files at a time
    (by primary key: a stored file is named after its row's id). Returns how many were deleted.
    """
    cutoff = utcnow() - orphan_grace(gateway)
    removed = 0
    async with aclosing(gateway.store.scan()) as found:
        async for chunk in _chunks(_old_candidates(found, cutoff), batch):
            async with gateway.database.reading() as conn:
                rows = await conn.execute(
                    select(files.c.storage_key).where(files.c.id.in_([i for i, _ in chunk]))
                )
                referenced = set(rows.scalars())
            for _, key in chunk:
                if key not in referenced:
                    await gateway.store.delete(key)
                    removed += 1
    if removed:
        log.info("retention: deleted %d stored files that no row refers to", removed)
    return removed


async def _old_candidates(
    found: AsyncIterator[StoredFile], cutoff: datetime
) -> AsyncIterator[tuple[str, str]]:
    """``(file id, key)`` of each file named like ours and last written before ``cutoff``."""
    async for stored in found:
        match = _FILE_NAME.fullmatch(stored.key.rsplit("/", 1)[-1])
        if match and stored.modified < cutoff:
            yield match.group(1), stored.key


async def _chunks(
    items: AsyncIterator[tuple[str, str]], size: int
) -> AsyncIterator[list[tuple[str, str]]]:
    chunk: list[tuple[str, str]] = []
    async for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


ORPHAN_SWEEP_INTERVAL = 3600.0
"""Seconds between two sweeps for orphans (each lists the whole store)."""


async def run_retention(gateway: Gateway, *, interval: float = 600.0) -> None:
    """Purge forever, every ``interval`` seconds; sweep for orphans at start and then every
    :data:`ORPHAN_SWEEP_INTERVAL`. Errors are logged, never fatal."""
    loop = asyncio.get_running_loop()
    swept_at: float | None = None
    while True:
        try:
            while await purge_expired(gateway) > 0:
                pass
            while await purge_expired_keys(gateway) > 0:
                pass
            if swept_at is None or loop.time() - swept_at >= ORPHAN_SWEEP_INTERVAL:
                swept_at = loop.time()
                await sweep_orphans(gateway)
        except Exception:
            log.exception("retention pass failed")
        await asyncio.sleep(interval)
