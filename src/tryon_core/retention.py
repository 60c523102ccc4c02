"""Delete what has outlived its retention: result files (rows and bytes) and idempotency keys."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import delete, select

from tryon_core.db.schema import files
from tryon_core.gateway import Gateway
from tryon_core.idempotency import purge_expired_keys
from tryon_core.ids import utcnow

__all__ = ["purge_expired", "run_retention"]

log = logging.getLogger("tryon.retention")


async def purge_expired(gateway: Gateway, *, batch: int = 500) -> int:
    """Remove up to ``batch`` expired files. Returns how many were removed."""
    async with gateway.database.reading() as conn:
        rows = (
            await conn.execute(
                select(files.c.id, files.c.storage_key)
                .where(files.c.expires_at < utcnow())
                .limit(batch)
            )
        ).all()
    for row in rows:
        await gateway.store.delete(row.storage_key)
    if rows:
        async with gateway.database.transaction() as conn:
            await conn.execute(delete(files).where(files.c.id.in_([r.id for r in rows])))
    return len(rows)


async def run_retention(gateway: Gateway, *, interval: float = 600.0) -> None:
    """Purge forever, every ``interval`` seconds; errors are logged, never fatal."""
    while True:
        try:
            while await purge_expired(gateway) > 0:
                pass
            while await purge_expired_keys(gateway) > 0:
                pass
        except Exception:
            log.exception("retention pass failed")
        await asyncio.sleep(interval)
