"""What one process runs besides (or instead of) HTTP, by its role; shared by the app's
lifespan (``tryon serve``) and ``tryon worker``.

==================================  ===  ==========  ========  =========  ========  =========
role                                API  runs jobs   sweeper   retention  webhooks  key usage
==================================  ===  ==========  ========  =========  ========  =========
``tryon serve`` (the default)       yes  yes         yes       yes        yes       yes
``tryon serve --no-workers``        yes  no          yes       no         no        yes
``tryon worker``                    no   yes         yes       yes        yes       no
==================================  ===  ==========  ========  =========  ========  =========

Every one of these is safe with every replica running it at once: jobs and webhook deliveries
are taken by conditional claims, settlement is exactly once, retention deletes the rows it
took by one conditional statement, and the sweeper's actions are claims and settlements too.
An API process sweeps as well: it releases the sync requests that failed in it while the
database was away, and (with Redis) delivers jobs accepted while the queue was away.

Jobs reach workers through the :class:`~tryon_core.jobs.dispatch.Dispatcher` chosen here:
with ``[redis] url`` the SAQ queue (:mod:`tryon_core.jobs.queue`; an API process only puts
deliveries on it), else the in-process pool. Without Redis on PostgreSQL an API process
announces its jobs with NOTIFY and every process with workers takes them from there (and from
its sweep); on SQLite a process without workers hands nothing on: ``tryon worker`` processes
find its jobs with their sweep, and, with no broker for job events either, the subscribers of
split roles (and of ``tryon serve --workers N``) re-read every ``[jobs] sweep_interval_seconds``.

``tryon serve --workers N`` runs N processes of the role it names; a job runs in the process
that accepted it (or, after that process died, wherever the sweep hands it on).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import signal
from collections.abc import AsyncIterator

from tryon_core import metrics
from tryon_core.accounts import record_key_usage
from tryon_core.config import Settings
from tryon_core.gateway import Gateway, build_catalog
from tryon_core.jobs.dispatch import Dispatcher, LocalDispatcher, NotifyDispatcher, take_notified
from tryon_core.jobs.events import wake_periodically
from tryon_core.jobs.sweeper import run_sweeper
from tryon_core.jobs.worker import claim_job, run_claimed, run_job
from tryon_core.retention import run_retention
from tryon_core.webhooks import run_webhooks

__all__ = ["Role", "background", "run_worker"]

log = logging.getLogger("tryon.jobs")


class Role(enum.Enum):
    SERVE = "serve"
    """API and workers in one process (``tryon serve``)."""
    API = "api"
    """The API alone (``tryon serve --no-workers``): accepts jobs, never runs them."""
    WORKER = "worker"
    """Workers alone, no HTTP (``tryon worker``)."""

    @property
    def api(self) -> bool:
        return self is not Role.WORKER

    @property
    def workers(self) -> bool:
        return self is not Role.API


def _dispatcher(gateway: Gateway, role: Role) -> Dispatcher | None:
    settings = gateway.settings
    workers = settings.jobs.workers if role.workers else 0
    if settings.redis.url:
        from tryon_core.jobs.queue import RedisDispatcher, connect_queue  # SAQ, Redis: only here

        return RedisDispatcher(
            connect_queue(settings.redis),
            claim=functools.partial(claim_job, gateway),
            run=functools.partial(run_claimed, gateway),
            workers=workers,
            sweep_interval=settings.jobs.sweep_interval_seconds,
        )
    if gateway.notify is not None:
        if role is not Role.SERVE:
            log.info(
                "no [redis] url: jobs reach `tryon worker` processes through PostgreSQL "
                "LISTEN/NOTIFY (and their sweep)"
            )
        if not workers:
            return NotifyDispatcher(gateway.notify)
    elif role is not Role.SERVE:
        log.warning(
            "no [redis] url: jobs accepted by `tryon serve --no-workers` reach `tryon worker` "
            "processes only through their sweep, and job events other processes through "
            "re-reading, every %g s ([jobs] sweep_interval_seconds)",
            settings.jobs.sweep_interval_seconds,
        )
    if not workers:
        return None
    return LocalDispatcher(functools.partial(run_job, gateway), workers=workers)


@contextlib.asynccontextmanager
async def background(gateway: Gateway, role: Role) -> AsyncIterator[None]:
    """Run ``role``'s dispatcher and background tasks on a started gateway while inside.

    On exit: the sweeper stops, running jobs get ``[jobs] shutdown_grace_seconds`` and the rest are
    handed back, then the other tasks stop (webhook deliveries and key usage flush once more).
    """
    dispatcher = _dispatcher(gateway, role)  # Redis was checked by gateway.start()
    if dispatcher is not None:
        await dispatcher.start()
    gateway.jobs = dispatcher
    notified = contextlib.AsyncExitStack()
    if gateway.notify is not None and isinstance(dispatcher, LocalDispatcher):
        await notified.enter_async_context(take_notified(gateway.notify, dispatcher))
    sweeper = asyncio.create_task(run_sweeper(gateway))
    others = []
    if not _alone(gateway, role) and gateway.redis is None and gateway.notify is None:
        every = gateway.settings.jobs.sweep_interval_seconds  # no broker (SQLite): re-read
        others.append(asyncio.create_task(wake_periodically(gateway.events, every)))
    if role.workers:
        others += [
            asyncio.create_task(run_retention(gateway)),
            asyncio.create_task(run_webhooks(gateway)),
        ]
    if role.api:
        others.append(asyncio.create_task(record_key_usage(gateway.key_usage, gateway.database)))
    try:
        yield
    finally:
        await notified.aclose()
        await _stop([sweeper])
        if dispatcher is not None:
            await dispatcher.close(grace=gateway.settings.jobs.shutdown_grace_seconds)
        gateway.jobs = None
        await _stop(others)
        metrics.process_exit()


def _alone(gateway: Gateway, role: Role) -> bool:
    """True if this process is the whole deployment as far as it can tell: ``tryon serve`` in
    one process. Split roles and ``--workers N`` have other processes changing jobs."""
    return role is Role.SERVE and gateway.settings.server.workers == 1


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def run_worker(settings: Settings) -> None:
    """``tryon worker``: run jobs (and the sweeper, retention, webhooks) until SIGTERM/SIGINT.

    ConfigError (one line from the CLI) if the file store, the database or Redis cannot be used.
    """
    from tryon_core.server import configure_logging, return_big_buffers, trim_when_idle
    from tryon_core.server.collector import young_every

    configure_logging(settings.logging.level, settings.logging.format)
    return_big_buffers()
    trim_when_idle()
    young_every()
    metrics.configure(settings)
    asyncio.run(_work(settings))


async def _work(settings: Settings) -> None:
    from tryon_core.server.collector import settle

    gateway = Gateway.create(settings, build_catalog(settings))
    await gateway.start()
    try:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with background(gateway, Role.WORKER):
            settle()  # the start-up heap, frozen (tryon_core.server.collector)
            jobs = settings.jobs.workers
            log.info("worker %s: running up to %d jobs at once", gateway.instance_id, jobs)
            await stop.wait()
            log.info(
                "worker %s: stopping (running jobs get %g s)",
                gateway.instance_id,
                settings.jobs.shutdown_grace_seconds,
            )
    finally:
        await gateway.close()
