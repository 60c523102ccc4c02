"""Serve an ASGI app on a free 127.0.0.1 port inside the current event loop (tests, demos)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

__all__ = ["serve_app"]


@asynccontextmanager
async def serve_app(app: Any, *, port: int = 0) -> AsyncIterator[str]:
    """Run ``app`` with uvicorn until the block ends; yields ``http://127.0.0.1:PORT``."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="auto")
    )
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
