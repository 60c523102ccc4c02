"""The distributed dispatcher: job ids reach workers on any machine through SAQ on Redis.

Why SAQ: it is asyncio-native (like the gateway), maintained, and a waiting worker picks a job
up with Redis ``BLMOVE``, so it starts within milliseconds of the ``202`` without polling. arq
is in maintenance mode; procrastinate (on PostgreSQL) needs psycopg, while we use asyncpg.

A SAQ job here is only a *delivery*: "job ``gen_…`` may be claimable now". The job's row and
its lease stay the arbiter (:func:`tryon_core.jobs.worker.claim_job`), so a duplicate or late
delivery claims nothing, runs nothing and charges nothing twice. Hence:

- a delivery's SAQ key is the job id: while one is waiting (or being taken), another
  :meth:`submit` of the same job is a no-op (SAQ dedupes by key);
- a worker finishes the delivery as soon as its claim is decided, claimed or not. The job may
  then run for an hour with nothing left in SAQ, so a worker that dies mid-job leaves no
  "active" SAQ job behind: once its lease lapses the sweeper's :meth:`submit` is a new
  delivery. (A worker dying in the milliseconds between taking a delivery and finishing it
  leaves one in SAQ's active list, not marked active: SAQ's own sweep, run here every
  ``sweep_interval_seconds``, re-queues it.)
- SAQ's defaults are set aside: no ``timeout`` (10 s by default; the job's deadline governs),
  no heartbeat, ``ttl = -1`` (nothing kept once finished: the row is the record).

Stopping (:meth:`close`): no new claim (a delivery taken meanwhile goes back to SAQ); running
jobs get the grace period, then each is handed back and delivered again at once, so another
worker resumes it (a submit-poll model's upstream task is polled, never submitted twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq.job import Job, Status
from saq.queue.redis import RedisQueue

from tryon_core.config import RedisConfig
from tryon_core.errors import ServiceUnavailable
from tryon_core.jobs.dispatch import cancel_running, settle_down

__all__ = ["RedisDispatcher", "connect_queue", "queue_name"]

log = logging.getLogger("tryon.jobs")

FUNCTION = "tryon.run_job"
"""The name every delivery carries (a worker runs nothing else)."""

_QUEUE_ERRORS = (RedisError, OSError)

Claim = Callable[[str], Awaitable[Any]]
"""Claim a job: its row, or None if it is not this process's to run."""
Run = Callable[[Any], Awaitable[None]]
"""Run a claimed job (its row) to its end, or hand it back when cancelled."""


def queue_name(config: RedisConfig) -> str:
    """The SAQ queue of this deployment: its keys are ``saq:<prefix>:jobs:…``."""
    return f"{config.prefix}:jobs"


def connect_queue(config: RedisConfig) -> RedisQueue:
    """A SAQ queue on ``[redis] url`` (not connected yet), each command bounded by ``timeout``."""
    assert config.url is not None
    redis: Redis = Redis.from_url(
        config.url, socket_timeout=config.timeout, socket_connect_timeout=config.timeout
    )
    return RedisQueue(redis, name=queue_name(config))


def unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The job queue is unavailable (Redis does not answer); nothing was charged. Retry shortly.",
        retry_after=5,
    )


class RedisDispatcher:
    """Submits deliveries to SAQ; with ``workers`` > 0 also takes them and runs the jobs."""

    def __init__(
        self,
        queue: RedisQueue,
        *,
        claim: Claim,
        run: Run,
        workers: int,
        sweep_interval: float,
    ) -> None:
        self.queue = queue
        self._claim = claim
        self._run = run
        self._workers = workers
        self._sweep_interval = sweep_interval
        self._wait = min(1.0, self._timeout() / 2)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._consumers: list[asyncio.Task[None]] = []
        self._upkeep: asyncio.Task[None] | None = None
        self._stopping = False
        self._down = False

    def _timeout(self) -> float:
        timeout = self.queue.redis.connection_pool.connection_kwargs.get("socket_timeout")
        return float(timeout or 5.0)

    async def check(self) -> None:
        try:
            await self.queue.redis.ping()
        except _QUEUE_ERRORS as exc:
            self._note_down(exc)
            raise unavailable() from None

    async def submit(self, job_id: str) -> None:
        try:
            await self.queue.enqueue(
                FUNCTION, key=job_id, job_id=job_id, timeout=0, heartbeat=0, retries=1, ttl=-1
            )
        except _QUEUE_ERRORS as exc:
            self._note_down(exc)
            raise unavailable() from None

    def cancel(self, job_id: str) -> bool:
        return cancel_running(self._running, job_id)

    def is_busy(self, job_id: str) -> bool:
        return job_id in self._running

    async def start(self) -> None:
        await self.queue.connect()
        self._stopping = False
        if self._workers:
            self._consumers = [asyncio.create_task(self._consume()) for _ in range(self._workers)]
            self._upkeep = asyncio.create_task(self._tidy())

    async def close(self, *, grace: float = 0.0) -> None:
        self._stopping = True
        if self._upkeep is not None:
            self._upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upkeep
        await settle_down(self._running, grace)
        if self._consumers:  # idle ones return within one dequeue wait
            await asyncio.wait(self._consumers, timeout=self._wait + self._timeout() + 1)
        for task in self._consumers:
            task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
        self._consumers = []
        with contextlib.suppress(Exception):
            await self.queue.disconnect()

    # -- the worker side ------------------------------------------------------------------

    async def _consume(self) -> None:
        while not self._stopping:
            try:
                delivery = await self.queue.dequeue(timeout=self._wait)
            except _QUEUE_ERRORS as exc:
                self._note_down(exc)
                await asyncio.sleep(self._wait)
                continue
            self._note_up()
            if delivery is None:
                continue
            if self._stopping:  # taken as we stop: back to the queue, for another worker
                with contextlib.suppress(*_QUEUE_ERRORS):
                    await self.queue.retry(delivery, "worker stopping")
                return
            await self._take(delivery)

    async def _take(self, delivery: Job) -> None:
        job_id = str((delivery.kwargs or {}).get("job_id", ""))
        try:
            # a job this process runs already (delivered again because its lease was renewed
            # late) is not claimed a second time here: one run per job in a process
            row = await self._claim(job_id) if job_id and job_id not in self._running else None
        except ServiceUnavailable as exc:  # the database is away; the sweeper delivers again
            log.warning("job %s: not claimed now: %s", job_id, exc.message)
            row = None
        with contextlib.suppress(*_QUEUE_ERRORS):  # else SAQ's sweep re-queues it: harmless
            await self.queue.finish(delivery, Status.COMPLETE)
        if row is None:
            return
        task = asyncio.ensure_future(self._run(row))
        self._running[job_id] = task
        try:
            await asyncio.wait({task})
        finally:
            self._running.pop(job_id, None)
        if task.cancelled():
            if self._stopping:  # handed back: let another worker resume it now
                with contextlib.suppress(ServiceUnavailable):
                    await self.submit(job_id)
        elif task.exception() is not None:
            log.error("job %s: worker failed", job_id, exc_info=task.exception())

    async def _tidy(self) -> None:
        """SAQ's own sweep (one replica at a time, by SAQ's lock): deliveries left in its
        active list by a worker that died while taking them go back to the queue."""
        lock = max(1, round(self._sweep_interval))
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.queue.sweep(lock=lock, abort=1.0)
            except _QUEUE_ERRORS as exc:
                self._note_down(exc)
            except Exception:
                log.exception("job queue sweep failed")

    def _note_down(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning("job queue: Redis is unavailable (%s); the sweeper delivers later", exc)

    def _note_up(self) -> None:
        if self._down:
            self._down = False
            log.info("job queue: Redis answers again")
