"""Find the jobs nobody is working on and get them going again.

It also releases sync generations whose process died mid-request (their ``deadline_at`` is
the longest they could have run) and those whose failure came while the database was away.

Every ``sweep_interval_seconds`` (and once at start-up) each gateway process looks at the
unfinished async jobs: those past their deadline that nobody holds are failed and released;
queued jobs and jobs whose lease lapsed (their process died) are handed to the dispatcher,
which claims them. Claims are conditional, so several processes sweeping at once is safe.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from tryon_core.db.schema import generations
from tryon_core.errors import ServiceUnavailable
from tryon_core.gateway import Gateway
from tryon_core.ids import as_utc, utcnow
from tryon_core.jobs.finish import finish_failure
from tryon_core.jobs.worker import DeadlineExceeded
from tryon_core.pipeline import error_record, record_failure, release_stranded

__all__ = ["run_sweeper", "sweep"]

log = logging.getLogger("tryon.jobs")


async def sweep(gateway: Gateway) -> int:
    """One pass. Returns how many jobs it dispatched or expired (and stranded sync requests
    it released: those whose failure came while the database was away)."""
    released = await release_stranded(gateway) + await _release_orphans(gateway)
    now = utcnow()
    async with gateway.database.reading() as conn:
        rows = (
            await conn.execute(
                select(
                    generations.c.id,
                    generations.c.status,
                    generations.c.lease_until,
                    generations.c.deadline_at,
                )
                .where(
                    generations.c.mode == "async",
                    generations.c.settled.is_(False),
                    generations.c.status.in_(("queued", "processing")),
                )
                .order_by(generations.c.created_at)
            )
        ).all()
    acted = released
    for row in rows:
        if gateway.jobs is not None and gateway.jobs.is_busy(row.id):
            continue
        free = row.status == "queued" or row.lease_until is None or as_utc(row.lease_until) < now
        if not free:
            continue
        if row.deadline_at is not None and as_utc(row.deadline_at) <= now:
            await finish_failure(gateway, row.id, error_record(DeadlineExceeded()))
        elif gateway.jobs is not None:
            gateway.jobs.submit(row.id)
        else:
            continue
        acted += 1
    return acted


async def _release_orphans(gateway: Gateway) -> int:
    """Sync generations still open long after their last possible moment: the process that
    ran them died. Release them (settlement is exactly once, so a late finisher keeps nothing).
    """
    async with gateway.database.reading() as conn:
        orphans = (
            await conn.scalars(
                select(generations.c.id).where(
                    generations.c.mode == "sync",
                    generations.c.settled.is_(False),
                    generations.c.deadline_at < utcnow(),
                )
            )
        ).all()
    error = {
        "type": "interrupted",
        "message": "The gateway stopped while this request ran; nothing was charged.",
        "code": 503,
    }
    for generation_id in orphans:
        async with gateway.database.transaction() as conn:
            await record_failure(conn, generation_id, error)
    return len(orphans)


async def run_sweeper(gateway: Gateway, *, interval: float | None = None) -> None:
    """Sweep forever; errors are logged, never fatal."""
    every = interval or gateway.settings.jobs.sweep_interval_seconds
    while True:
        try:
            await sweep(gateway)
        except ServiceUnavailable as exc:
            log.warning("job sweep skipped: %s", exc.message)
        except Exception:
            log.exception("job sweep failed")
        await asyncio.sleep(every)
