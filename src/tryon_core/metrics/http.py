"""HTTP requests by route template (never the raw path: ids would explode the label set),
method and status, with their latency: an ASGI middleware around every route."""

from __future__ import annotations

import asyncio
import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from tryon_core.metrics.record import http_request

__all__ = ["count_requests"]


def count_requests(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: record each HTTP request once its answer is out (or it ended without
    one: 499 if the client went away, 500 otherwise). A request that matches no route never
    reaches route middleware, so 404s for unknown paths are not counted."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await app(scope, receive, observed_send)
        except asyncio.CancelledError:
            status = status or 499
            raise
        except BaseException:
            status = status or 500
            raise
        finally:
            route = scope.get("path_template") or "unmatched"
            http_request(route, scope["method"], status or 500, time.perf_counter() - started)

    return middleware
