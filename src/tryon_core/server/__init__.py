"""The HTTP server ``tryon serve`` runs: uvicorn, with our logging and connection bounds.

- :mod:`~tryon_core.server.logs`: one log stream, secrets blanked from every line.
- :mod:`~tryon_core.server.connections`: header timeout, connections per client and in all.
- :mod:`~tryon_core.server.httptools_guard`: the same guard on the httptools parser.
- :mod:`~tryon_core.server.fast_paths`: uvloop and httptools when installed (``[server] loop``,
  ``http``).
- :mod:`~tryon_core.server.processes`: ``--workers N``, several processes on one port.
- :mod:`~tryon_core.server.allocator`: big buffers go back to the system once freed, and
  freed heap pages soon after a burst.
- :mod:`~tryon_core.server.collector`: the start-up heap frozen, young objects collected less
  often.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any

from uvicorn.config import STARTUP_FAILURE

from tryon_core.config import Settings
from tryon_core.redis_link import check_redis
from tryon_core.server.allocator import return_big_buffers, trim_when_idle
from tryon_core.server.connections import ConnectionGate, GuardedH11Protocol
from tryon_core.server.fast_paths import http_protocol, loop_name, parser_name
from tryon_core.server.logs import RedactingFormatter, configure_logging, redact
from tryon_core.server.processes import serve_processes
from tryon_core.server.serving_app import serving_app
from tryon_core.storage import signing_secret
from tryon_core.stores import check_store

if TYPE_CHECKING:
    import uvicorn

__all__ = [
    "ConnectionGate",
    "GuardedH11Protocol",
    "RedactingFormatter",
    "configure_logging",
    "preflight",
    "redact",
    "return_big_buffers",
    "serve",
    "trim_when_idle",
]

log = logging.getLogger("tryon.server")

_FILES_BESIDES_CONNECTIONS = 128
"""Descriptors kept for the database, stored files, upstream and webhook connections."""


def serve(settings: Settings, *, workers: bool = True) -> int:
    """Serve the app until SIGTERM or SIGINT, in one process or ``[server] workers``
    (:mod:`~tryon_core.server.processes`); the exit status (3: the server could not start).

    :func:`preflight` runs first: what cannot be used raises ConfigError (one line from
    ``tryon serve``) rather than failing inside the server's start-up.
    """
    import uvicorn

    asyncio.run(preflight(settings))
    configure_logging(settings.logging.level, settings.logging.format)
    server = settings.server
    _make_room_for(server.max_connections + _FILES_BESIDES_CONNECTIONS)
    config = functools.partial(_uvicorn_config, settings)
    if server.workers > 1:
        return serve_processes(settings, config, workers=workers)
    one = uvicorn.Server(config(serving_app(settings, workers=workers)))
    one.run()
    return 0 if one.started else STARTUP_FAILURE


def _uvicorn_config(settings: Settings, app: Any, *, factory: bool = False) -> uvicorn.Config:
    """One process's server: our guarded protocol, loop, timeouts and logging. ``app`` is the
    app, or (``factory``, several processes) a picklable factory each child calls."""
    import uvicorn

    server = settings.server
    loop, protocol = loop_name(server), http_protocol(server)
    log.info("event loop: %s; HTTP parser: %s", loop, parser_name(protocol))
    return uvicorn.Config(
        app,
        factory=factory,
        host=server.host,
        port=server.port,
        workers=server.workers,
        loop=loop,
        http=protocol,
        timeout_keep_alive=server.keep_alive_seconds,
        log_config=None,  # configure_logging() did
        log_level=settings.logging.level,
        access_log=False,  # the app logs one line per request (api.request_log)
        proxy_headers=False,
    )


async def preflight(settings: Settings) -> None:
    """Check what a start needs before starting: the signing secret of a shared deployment,
    the file store and Redis (``[redis] url``). ConfigError naming the key otherwise."""
    signing_secret(settings)
    await check_store(settings.storage)
    await check_redis(settings.redis)


def _make_room_for(files: int) -> None:
    """Raise the open-file limit towards ``files`` as far as allowed; warn if that is short."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = files if hard == resource.RLIM_INFINITY else min(files, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < files:
        log.warning(
            "[server] max_connections needs about %d open files but this process may open "
            "%d (ulimit -n); lower max_connections or raise the limit",
            files,
            target,
        )
