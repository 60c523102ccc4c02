"""Find the jobs nobody is working on and get them going again.

It also releases sync generations whose process died mid-request (their ``deadline_at`` is
the longest they could have run) and those whose failure came while the database was away.

Every ``sweep_interval_seconds`` (and once at start-up) every process looks at a bounded page
of the unfinished async jobs nobody holds (queued, or their lease lapsed or was handed back),
the next page at the next pass: those past their deadline are failed and released; the others
are handed to the dispatcher (which claims them, or puts a delivery on the queue). Every
action is conditional (a claim, a settlement), so every replica sweeping at once is safe: the
worst is a duplicate delivery, which claims nothing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import and_, literal, or_, select, tuple_

from tryon_core.db.schema import generations
from tryon_core.errors import ServiceUnavailable
from tryon_core.gateway import Gateway
from tryon_core.ids import as_utc, utcnow
from tryon_core.jobs.finish import finish_failure
from tryon_core.jobs.worker import DeadlineExceeded
from tryon_core.pipeline import error_record, record_failure, release_stranded

__all__ = ["BATCH", "JobSweeper", "run_sweeper"]

log = logging.getLogger("tryon.jobs")

BATCH = 200
"""Rows looked at per pass, of each kind (free async jobs, orphaned sync generations)."""


class JobSweeper:
    """One process's sweeps; remembers where the last page of free jobs ended."""

    def __init__(self, gateway: Gateway, *, batch: int = BATCH) -> None:
        self._gateway = gateway
        self._batch = batch
        self._after: tuple[datetime, str] | None = None

    async def sweep(self) -> int:
        """One pass. Returns how many jobs it dispatched or expired (and stranded sync
        requests it released)."""
        gateway = self._gateway
        acted = await release_stranded(gateway) + await self._release_orphans()
        now = utcnow()
        for row in await self._free_jobs(now):
            if gateway.jobs is not None and gateway.jobs.is_busy(row.id):
                continue
            if row.deadline_at is not None and as_utc(row.deadline_at) <= now:
                await finish_failure(gateway, row.id, error_record(DeadlineExceeded()))
            elif gateway.jobs is not None:
                await gateway.jobs.submit(row.id)  # ServiceUnavailable ends the pass
            else:
                continue
            acted += 1
        return acted

    async def _free_jobs(self, now: datetime) -> list[Any]:
        """The next page of unfinished async jobs that no live lease holds, oldest first."""
        free = or_(
            generations.c.status == "queued",
            and_(
                generations.c.status == "processing",
                or_(generations.c.lease_until.is_(None), generations.c.lease_until < now),
            ),
        )
        query = (
            select(generations.c.id, generations.c.created_at, generations.c.deadline_at)
            .where(generations.c.mode == "async", generations.c.settled.is_(False), free)
            .order_by(generations.c.created_at, generations.c.id)
            .limit(self._batch)
        )
        if self._after is not None:
            created, job_id = self._after
            query = query.where(
                tuple_(generations.c.created_at, generations.c.id)
                > tuple_(literal(created, generations.c.created_at.type), literal(job_id))
            )
        async with self._gateway.database.reading() as conn:
            rows = (await conn.execute(query)).all()
        # a short page was the last one: start from the oldest at the next pass
        self._after = (rows[-1].created_at, rows[-1].id) if len(rows) == self._batch else None
        return list(rows)

    async def _release_orphans(self) -> int:
        """Sync generations still open long after their last possible moment: the process
        that ran them died. Release them (settlement is exactly once, so a late finisher, or
        another replica's sweep, keeps nothing)."""
        gateway = self._gateway
        async with gateway.database.reading() as conn:
            orphans = (
                await conn.scalars(
                    select(generations.c.id)
                    .where(
                        generations.c.mode == "sync",
                        generations.c.settled.is_(False),
                        generations.c.deadline_at < utcnow(),
                    )
                    .limit(self._batch)
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
    sweeper = JobSweeper(gateway)
    while True:
        try:
            await sweeper.sweep()
        except ServiceUnavailable as exc:
            log.warning("job sweep skipped: %s", exc.message)
        except Exception:
            log.exception("job sweep failed")
        await asyncio.sleep(every)
