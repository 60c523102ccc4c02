"""``tryon serve --workers N``: N processes serving one port, under uvicorn's supervisor.

The parent runs no app: it starts N children (spawned, so nothing of the parent's state is
shared by accident), answers their health pings, starts a new child in place of one that died,
and on SIGTERM or SIGINT stops them all, each as ``tryon serve`` stops (requests finish,
running jobs get ``[jobs] shutdown_grace_seconds``). A child that cannot start (its app or
lifespan fails, or its socket cannot be bound) stops the whole: it would fail the same way again.

On Linux each child listens on a socket of its own, bound to the one port with
``SO_REUSEPORT``, and the kernel spreads new connections evenly across the listening sockets.
One socket shared by all (what uvicorn does, and what this does elsewhere) lets whichever child
wakes first take connection after connection: two processes then served no more than one. The
parent checks that the port is free and keeps it bound (not listening: it takes no
connection) for the whole run; a child binds its own socket when it starts (:class:`_OwnSocket`)
and listens once its app is ready, so a child still starting, or one that died, is sent
nothing. What the kernel had queued on a socket whose child died or stopped and not yet handed
over is reset (``net.ipv4.tcp_migrate_req = 1``, Linux 5.14+, moves it to another instead).

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
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

from tryon_core.config import Settings
from tryon_core.errors import ConfigError

if TYPE_CHECKING:
    import uvicorn

__all__ = ["CHILD_PATIENCE", "build_app", "serve_processes"]

log = logging.getLogger("tryon.server")

CHILD_PATIENCE = 60
"""Seconds a child has to answer the parent's health ping (from a thread of its own, so a
busy event loop does not count) before it is taken for hung and replaced; a child still
importing on a loaded machine must not be (uvicorn's default is 5)."""

REUSE_PORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
"""One listening socket per child, balanced by the kernel (Linux; elsewhere ``SO_REUSEPORT``
does not balance, or is missing: one shared socket)."""


def serve_processes(settings: Settings, config: Callable[..., Any], *, workers: bool) -> int:
    """Run ``[server] workers`` children until SIGTERM/SIGINT; the exit status (3: a child
    could not start). ``config(factory, factory=True)`` is one process's uvicorn Config."""
    from uvicorn.config import STARTUP_FAILURE

    with _shared_metrics(settings):
        factory = functools.partial(build_app, settings, workers=workers)
        uvicorn_config = config(factory, factory=True)
        uvicorn_config.timeout_worker_healthcheck = CHILD_PATIENCE
        with _listeners(uvicorn_config) as sockets:
            supervisor = _supervisor(uvicorn_config, sockets)
            log.info("serving with %d processes", settings.server.workers)
            supervisor.run()
    if any(child.exitcode == STARTUP_FAILURE for child in supervisor.processes):
        return STARTUP_FAILURE
    return 0


def build_app(settings: Settings, *, workers: bool) -> Any:
    """In a child: its log and allocator setting, then its app (uvicorn's factory; a
    ConfigError ends the child as a failed start, which stops the parent rather than a
    restart loop)."""
    from uvicorn.config import STARTUP_FAILURE

    from tryon_core.server.logs import configure_logging
    from tryon_core.server.serving_app import serving_app

    configure_logging(settings.logging.level, settings.logging.format)
    try:
        return serving_app(settings, workers=workers)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        sys.exit(STARTUP_FAILURE)


def _supervisor(config: uvicorn.Config, sockets: list[socket.socket]) -> Any:
    """uvicorn's supervisor, but one that sees a child die while it waits for its answer.

    Each child answers health pings on a pipe whose child end the parent keeps open too: a
    child that died between a ping and its answer (one ending as a failed start, its answering
    thread stopped with the interpreter) left the parent waiting the whole patience
    (:data:`CHILD_PATIENCE`) before it noticed, and a failed start took a minute to stop the
    run. The parent's copy of each child end is closed once the child holds its own (it is
    spawned with it), so a dead child's pipe reads as closed at once."""
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        def keep_subprocess_alive(self) -> None:
            for child in self.processes:
                child.child_conn.close()  # no-op once closed
            super().keep_subprocess_alive()

    return Supervisor(config, sockets=sockets)


@contextlib.contextmanager
def _listeners(config: uvicorn.Config) -> Iterator[list[socket.socket]]:
    """What the supervisor hands each child it starts: one socket of its own (Linux), else
    the one socket bound here. Exits 3 (uvicorn's failed start) if the port is taken."""
    from uvicorn.config import STARTUP_FAILURE

    if not REUSE_PORT:
        with config.bind_socket() as shared:
            yield [shared]
        return
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    try:
        with socket.socket(family) as probe:  # no SO_REUSEPORT: fails on any listener there
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((config.host, config.port))
            port = probe.getsockname()[1]  # the one a port of 0 was given
        held = _reuse_port_socket(family)
        held.bind((config.host, port))
    except OSError as exc:
        log.error("cannot bind %s port %d: %s", config.host, config.port, exc)
        sys.exit(STARTUP_FAILURE)
    with held:  # bound, never listening: the port stays ours between children
        shown = f"[{config.host}]" if family == socket.AF_INET6 else config.host
        log.info(
            "Uvicorn running on http://%s:%d (Press CTRL+C to quit); one listening socket per "
            "process (SO_REUSEPORT)",
            shown,
            port,
        )
        yield [cast("socket.socket", _OwnSocket(family, config.host, port))]


class _OwnSocket:
    """Stands for a socket in the supervisor's list: unpickled in a child (every child is
    spawned with the list), it is a new socket bound to ``host``:``port`` with
    ``SO_REUSEPORT``, the child's alone; uvicorn's server listens on it after startup."""

    def __init__(self, family: socket.AddressFamily, host: str, port: int) -> None:
        self.family, self.host, self.port = family, host, port

    def __reduce__(self) -> tuple[Callable[..., socket.socket], tuple[Any, ...]]:
        return _bind_own_socket, (self.family, self.host, self.port)


def _bind_own_socket(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    """In a child: its socket (exit 3, a failed start, if the port cannot be bound)."""
    from uvicorn.config import STARTUP_FAILURE

    sock = _reuse_port_socket(family)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        print(f"tryon: cannot bind {host} port {port}: {exc}", file=sys.stderr, flush=True)
        sys.exit(STARTUP_FAILURE)
    return sock


def _reuse_port_socket(family: socket.AddressFamily) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


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
