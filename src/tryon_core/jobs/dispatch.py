"""The dispatch seam: how a job id reaches a worker.

The durable state is the database; a dispatcher only says "run this job now". The embedded
implementation (:class:`LocalDispatcher`) is a bounded pool of asyncio workers in the gateway
process; with ``[redis] url`` a queue on Redis stands behind the same interface
(:mod:`tryon_core.jobs.queue`). Without Redis on PostgreSQL, an API process without workers
announces each job it accepts with NOTIFY (:class:`NotifyDispatcher`) and the workers of every
other process hear it (:func:`take_notified`). Either way jobs claim themselves with a lease
(see :mod:`tryon_core.jobs.worker`), so a duplicate or late delivery runs nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from tryon_core.pg_link import PgLink

__all__ = [
    "JOBS_CHANNEL",
    "Dispatcher",
    "LocalDispatcher",
    "NotifyDispatcher",
    "cancel_running",
    "settle_down",
    "take_notified",
]

JOBS_CHANNEL = "tryon_jobs"
"""The PostgreSQL channel on which job ids are announced to workers (payload: the id)."""

log = logging.getLogger("tryon.jobs")


class Dispatcher(Protocol):
    async def check(self) -> None:
        """Raise :class:`~tryon_core.errors.ServiceUnavailable` if a new job could not be
        handed to a worker now (called before the job is persisted)."""

    async def submit(self, job_id: str) -> None:
        """Ask for the job to run soon. Duplicates of a queued or running job are ignored.
        May raise ServiceUnavailable; the job is in the database, so a sweep delivers it."""

    def cancel(self, job_id: str) -> bool:
        """Stop the job if it runs in this process; True if it did."""

    def is_busy(self, job_id: str) -> bool:
        """Whether the job is waiting or running here."""

    async def start(self) -> None: ...

    async def close(self, *, grace: float = 0.0) -> None:
        """Take no new job; give running ones ``grace`` seconds, then stop (hand back) the rest."""


def cancel_running(running: dict[str, asyncio.Task[None]], job_id: str) -> bool:
    """Cancel the job's task if it is among ``running``; True if it was."""
    task = running.get(job_id)
    if task is None:
        return False
    task.cancel()
    return True


async def settle_down(running: dict[str, asyncio.Task[None]], grace: float) -> None:
    """Wait up to ``grace`` seconds for the ``running`` jobs to end, then cancel the rest (each
    hands its job back) and wait for them to have done so."""
    tasks = set(running.values())
    if tasks and grace > 0:
        log.info("stopping: %d running job(s) get %.0f s to finish", len(tasks), grace)
        await asyncio.wait(tasks, timeout=grace)
    left = {task for task in tasks if not task.done()}
    if left:
        log.info("stopping: handing back %d unfinished job(s)", len(left))
    for task in left:
        task.cancel()
    if left:
        await asyncio.wait(left)


class LocalDispatcher:
    """``workers`` asyncio tasks taking job ids from an in-memory queue, in order."""

    def __init__(self, run: Callable[[str], Awaitable[None]], *, workers: int) -> None:
        self._run = run
        self._workers = workers
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._waiting: set[str] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    async def check(self) -> None:
        return None

    async def submit(self, job_id: str) -> None:
        self.offer(job_id)

    def offer(self, job_id: str) -> None:
        """:meth:`submit`, for callers that cannot await."""
        if self._closing or job_id in self._waiting or job_id in self._running:
            return
        self._waiting.add(job_id)
        self._queue.put_nowait(job_id)

    def cancel(self, job_id: str) -> bool:
        return cancel_running(self._running, job_id)

    def is_busy(self, job_id: str) -> bool:
        return job_id in self._waiting or job_id in self._running

    async def start(self) -> None:
        self._closing = False
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def close(self, *, grace: float = 0.0) -> None:
        self._closing = True  # idle workers take nothing more; queued jobs stay queued rows
        await settle_down(self._running, grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _work(self) -> None:
        while True:
            job_id = await self._queue.get()
            self._waiting.discard(job_id)
            if self._closing:
                continue
            task = asyncio.ensure_future(self._run(job_id))
            self._running[job_id] = task
            try:
                await asyncio.wait({task})
                if not task.cancelled() and task.exception() is not None:
                    log.error("job %s: worker failed", job_id, exc_info=task.exception())
            except asyncio.CancelledError:  # the dispatcher is closing: stop the job too
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                raise
            finally:
                self._running.pop(job_id, None)


class NotifyDispatcher:
    """``tryon serve --no-workers`` on PostgreSQL without Redis: runs nothing, and announces each
    job it is given on :data:`JOBS_CHANNEL`, in the background (never blocks or fails; a lost
    announcement leaves the job to the workers' sweep)."""

    def __init__(self, link: PgLink) -> None:
        self._link = link

    async def check(self) -> None:
        return None

    async def submit(self, job_id: str) -> None:
        self._link.send(JOBS_CHANNEL, job_id)

    def cancel(self, job_id: str) -> bool:
        return False

    def is_busy(self, job_id: str) -> bool:
        return False

    async def start(self) -> None:
        return None

    async def close(self, *, grace: float = 0.0) -> None:
        return None


@contextlib.asynccontextmanager
async def take_notified(link: PgLink, dispatcher: LocalDispatcher) -> AsyncIterator[None]:
    """While inside, the job ids announced on :data:`JOBS_CHANNEL` by other processes go to
    ``dispatcher`` (listening is in place on entry, unless the database is away)."""
    link.listen(JOBS_CHANNEL, dispatcher.offer)
    await link.listening()
    try:
        yield
    finally:
        link.unlisten(JOBS_CHANNEL)
