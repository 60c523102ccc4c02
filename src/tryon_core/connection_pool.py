"""httpcore's connection pool, linear and cancellation-proof: many calls in flight stay cheap,
and a cancelled call gives its place back.

httpcore (1.0) runs one *assignment pass* each time a request joins its pool and each time one
ends: it drops closed and expired connections, closes idle ones past the keep-alive limit, and
hands queued requests to connections. Its pass costs O(N² + N x M) for N connections and M
queued requests: the keep-alive check counts the pool again for every idle connection, and
every queued request lists the whole pool twice. It also hands one idle HTTP/1.1 connection
to every queued request at once; all but one then fail with ``ConnectionNotAvailable``, queue
again and start another pass. Try-on upstreams answer in seconds, so a busy gateway holds a
hundred calls in flight and more waiting: measured on the build machine (one client, a fake
upstream answering in 50 ms), a call cost ~0.9 ms of CPU at 16 in flight and ~12.6 ms at 128,
nearly all of it in that pass (``benchmarks/bench_upstream_pool.py``).

:class:`LinearPool` changes that pass only, in O(N + M): connections are looked at once, idle
ones past the limit are closed oldest first (the limit counts idle connections, as its name
says; httpcore's counted all of them), each idle connection is handed to one request only, and
a connection handed to a request that has not started on it yet is neither handed again nor
closed.

It also keeps cancelled calls from taking places for good. httpcore closes an answer in an
anyio shield, which does not hold off asyncio's ``task.cancel()``: a cancellation landing
there (about one in twenty-five cancellations a millisecond or two into a call, measured)
left the call on the pool's list and its connection busy forever, and a call cancelled
between being handed a new connection and starting on it left that connection neither idle
nor closed, forever too. Each took one of the pool's places; the gateway cancels calls (a
client hanging up, a provider's timeout), so in time no place would be left. Here an answer's
closing always takes its call off the list, and a connection no call holds that is not idle
is closed by the next pass.

Requests, connections, HTTP/1.1, TLS, retries and errors are httpcore's. This depends on its
pool's internals (``_connections``, ``_requests``, a pool request's ``connection``, an answer
stream's ``_pool_request``), hence the ``httpcore>=1.0.9,<1.1`` requirement and the tests
that drive it (``tests/test_connection_pool.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpcore
from httpcore import AsyncConnectionInterface

__all__ = ["LinearPool", "linear"]


class LinearPool(httpcore.AsyncConnectionPool):
    """``httpcore.AsyncConnectionPool`` for HTTP/1.1 whose assignment pass is linear (the
    module's docstring says how), and whose answers give their place back however their
    closing ends; made by :func:`linear` from a pool httpx built."""

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        response = await super().handle_async_request(request)
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_Released(response.stream, self),
            extensions=response.extensions,
        )

    async def _close_connections(self, closing: list[AsyncConnectionInterface]) -> None:
        if closing:  # httpcore enters an anyio shield (a cancel scope) even for none: twice a call
            await super()._close_connections(closing)

    async def _forget(self, pool_request: Any) -> None:
        """Take back the place of a call whose closing was cut short."""
        if pool_request not in self._requests:
            return  # httpcore's own closing did it
        self._requests.remove(pool_request)
        await self._close_connections(self._assign_requests_to_connections())

    def _assign_requests_to_connections(self) -> list[AsyncConnectionInterface]:
        closing: list[AsyncConnectionInterface] = []
        reserved = {id(r.connection) for r in self._requests if r.connection is not None}
        kept: dict[int, AsyncConnectionInterface] = {}  # dicts keep their order: oldest first
        idle: dict[int, AsyncConnectionInterface] = {}
        for connection in self._connections:
            if connection.is_closed():
                continue
            if connection.has_expired():  # reserved too: its request then tries another
                closing.append(connection)
                continue
            if id(connection) not in reserved:
                if not connection.is_idle():
                    # no call holds it and it takes none: made for, or opened by, a call
                    # cancelled before it began on it (httpcore would keep it forever)
                    closing.append(connection)
                    continue
                idle[id(connection)] = connection
            kept[id(connection)] = connection
        while len(idle) > self._max_keepalive_connections:
            closing.append(_drop_oldest(idle, kept))

        waiting: set[tuple[bytes, bytes, int]] = set()  # origins no idle one is left for
        for pool_request in self._requests:
            if not pool_request.is_queued():
                continue
            origin = pool_request.request.url.origin
            key = (origin.scheme, origin.host, origin.port)  # an Origin is not hashable
            reused = None if key in waiting else _take(idle, origin)
            if reused is not None:
                pool_request.assign_to_connection(reused)
                continue
            waiting.add(key)
            if len(kept) >= self._max_connections:
                if not idle:
                    continue  # every connection is busy: wait for one to end
                closing.append(_drop_oldest(idle, kept))  # another origin's: make room
            connection = self.create_connection(origin)
            kept[id(connection)] = connection
            pool_request.assign_to_connection(connection)
        self._connections = list(kept.values())
        return closing


class _Released:
    """An answer's body that gives its call's place in the pool back when it is closed, also
    when a cancellation lands in httpcore's own closing: that closing runs in an anyio
    shield, which does not hold off asyncio's ``task.cancel()``, and stopped before taking
    the call off the pool's list (its connection, left mid-answer, is then closed by the next
    assignment pass: no call holds it and it takes none)."""

    def __init__(self, stream: Any, pool: LinearPool) -> None:
        self._stream = stream
        self._pool = pool

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            await self._pool._forget(self._stream._pool_request)


def _drop_oldest(
    idle: dict[int, AsyncConnectionInterface], kept: dict[int, AsyncConnectionInterface]
) -> AsyncConnectionInterface:
    key = next(iter(idle))
    del kept[key]
    return idle.pop(key)


def _take(
    idle: dict[int, AsyncConnectionInterface], origin: httpcore.Origin
) -> AsyncConnectionInterface | None:
    """An idle connection to ``origin``, then no longer idle for anyone else in this pass."""
    for key, connection in idle.items():
        if connection.can_handle_request(origin):
            del idle[key]
            return connection
    return None


def linear(pool: httpcore.AsyncConnectionPool) -> None:
    """Give ``pool`` (httpx's, not yet used) the linear assignment pass, if it is a plain
    HTTP/1.1 pool; another kind (a proxy's, or one that may speak HTTP/2, whose connections
    take several requests at once) is left as it is."""
    if type(pool) is httpcore.AsyncConnectionPool and not pool._http2:
        pool.__class__ = LinearPool
