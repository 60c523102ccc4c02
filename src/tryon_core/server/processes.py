"""``tryon serve --workers N``: N processes serving one port, under uvicorn's supervisor.

The parent binds the socket once and runs no app: it starts N children (spawned, so nothing
of the parent's state is shared by accident), answers their health pings, starts a new child
in place of one that died, and on SIGTERM or SIGINT stops them all, each as ``tryon serve``
stops (requests finish, running jobs get ``[jobs] shutdown_grace_seconds``). A child that
cannot start (its app or lifespan fails) stops the whole: it would fail the same way again.

Each child is a whole gateway: its own database pool, upstream client, connection gate and
background tasks (:mod:`~tryon_core.roles`). What is exact across them lives in the database
(credits, jobs and their leases, idempotency keys, key usage, webhook deliveries) or Redis;
what is per process without Redis (rate-limit windows, model health) is listed in
docs/deploy.md. Metrics add up across children: with ``[metrics] enabled`` and no
``multiprocess_dir``, the parent makes one for the run and removes it at the end.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from tryon_core.config import Settings
from tryon_core.errors import ConfigError

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ["CHILD_PATIENCE", "build_app", "serve_processes"]

log = logging.getLogger("tryon.server")

CHILD_PATIENCE = 60
"""Seconds a child has to answer the parent's health ping (from a thread of its own, so a
busy event loop does not count) before it is taken for hung and replaced; a child still
importing on a loaded machine must not be (uvicorn's default is 5)."""


def serve_processes(settings: Settings, config: Callable[..., Any], *, workers: bool) -> int:
    """Run ``[server] workers`` children until SIGTERM/SIGINT; the exit status (3: a child
    could not start). ``config(factory, factory=True)`` is one process's uvicorn Config."""
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    with _shared_metrics(settings):
        factory = functools.partial(build_app, settings, workers=workers)
        uvicorn_config = config(factory, factory=True)
        uvicorn_config.timeout_worker_healthcheck = CHILD_PATIENCE
        supervisor = Multiprocess(uvicorn_config, sockets=[uvicorn_config.bind_socket()])
        log.info("serving with %d processes", settings.server.workers)
        supervisor.run()
    if any(child.exitcode == STARTUP_FAILURE for child in supervisor.processes):
        return STARTUP_FAILURE
    return 0


def build_app(settings: Settings, *, workers: bool) -> Litestar:
    """In a child: its log and allocator setting, then its app (uvicorn's factory; a
    ConfigError ends the child as a failed start, which stops the parent rather than a
    restart loop)."""
    from uvicorn.config import STARTUP_FAILURE

    from tryon_core.api import create_app
    from tryon_core.server.allocator import return_big_buffers
    from tryon_core.server.logs import configure_logging

    configure_logging(settings.logging.level, settings.logging.format)
    return_big_buffers()  # the parent's setting is not inherited by a spawned process
    try:
        return create_app(settings, workers=workers)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        sys.exit(STARTUP_FAILURE)


@contextlib.contextmanager
def _shared_metrics(settings: Settings) -> Iterator[None]:
    """With metrics on and no ``multiprocess_dir``, one made for this run (and removed)."""
    metrics = settings.metrics
    if not metrics.enabled or metrics.multiprocess_dir is not None:
        yield
        return
    metrics.multiprocess_dir = tempfile.mkdtemp(prefix="tryon-metrics-")
    try:
        yield
    finally:
        shutil.rmtree(metrics.multiprocess_dir, ignore_errors=True)
        metrics.multiprocess_dir = None
