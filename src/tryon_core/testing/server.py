"""Serve an ASGI app on a free 127.0.0.1 port inside the current event loop (tests, demos)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

__all__ = ["KEEP_ALIVE_SECONDS", "serve_app", "serve_app_in_thread"]

KEEP_ALIVE_SECONDS = 300
"""How long these servers keep an idle connection (uvicorn's default is 5 s). A test's client
pool picks its oldest idle connection first; one closed by the server in the same instant as
the request went out answers with a ``ReadError``, which no client retries. A test ends well
before this, and the server's shutdown closes idle connections anyway."""


@asynccontextmanager
async def serve_app(app: Any, *, port: int = 0, http: Any = "auto") -> AsyncIterator[str]:
    """Run ``app`` with uvicorn until the block ends; yields ``http://127.0.0.1:PORT``.
    ``http`` is uvicorn's option of that name: ``auto``, ``h11``, ``httptools`` or a protocol
    class (``tryon serve``'s own comes from :func:`tryon_core.server.fast_paths.http_protocol`)."""
    server = _server(app, port, http)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        await task


@contextmanager
def serve_app_in_thread(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread of its own (its own event loop), for sync tests."""
    server = _server(app, 0)
    thread = threading.Thread(target=server.run, name="tryon-fake-server", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server stopped before it started")
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _server(app: Any, port: int, http: Any = "auto") -> Any:
    """uvicorn on 127.0.0.1 (``port`` 0: a free one), quiet, keeping idle connections
    ``KEEP_ALIVE_SECONDS``."""
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            http=http,
            log_level="warning",
            lifespan="auto",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=2,
        )
    )
