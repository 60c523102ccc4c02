"""The sockets under the gateway's HTTP clients: httpcore's network backend on asyncio itself.

httpx hands the bytes of each request to httpcore, and httpcore to a *network backend*. Its
default on asyncio goes through anyio, which wraps every read and write in a cancel scope, a
timeout scope and a checkpoint (one more turn of the event loop each). Measured on the build
machine, a small upstream call at 8 in flight cost the caller ~950 us of CPU that way, and
~650 us on :class:`AsyncioBackend`: asyncio's transports and a protocol of our own that
buffers what arrives. That is about a twentieth of what a whole try-on request costs the
gateway. The requests, pools, HTTP/1.1, TLS verification and proxies are httpx's and
httpcore's as before; only the bytes move differently.

- Reads take what has arrived, up to ``max_bytes``; past :data:`READ_HIGH_WATER` unread bytes
  the socket stops being read (the peer's sends then wait), so an upstream that answers
  faster than the gateway reads costs no more memory than that.
- Writes go to the transport at once and wait only while its buffer is full.
- A timeout of ``None`` (upstream calls are bounded by their provider's ``timeout`` around the
  whole attempt) costs nothing; any other is one ``asyncio.timeout``.
- Errors are httpcore's (``ConnectError``, ``ReadTimeout``...), which httpx turns into its own.

:func:`http_transport` is ``httpx.AsyncHTTPTransport`` with this backend.
"""

# httpcore's interface takes a `timeout` argument in each of these methods
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

from tryon_core.connection_pool import linear

__all__ = ["READ_HIGH_WATER", "AsyncioBackend", "AsyncioStream", "http_transport"]

READ_HIGH_WATER = 1024 * 1024
"""Unread bytes past which the socket is no longer read until some are taken."""


def http_transport(**options: Any) -> httpx.AsyncHTTPTransport:
    """``httpx.AsyncHTTPTransport(**options)`` whose connections use :class:`AsyncioBackend`,
    in a pool whose bookkeeping stays linear however many calls are in flight
    (:mod:`tryon_core.connection_pool`). (httpx takes no backend of its choice: its pool is
    given one after it is built; a pool of another kind, a proxy's, keeps httpcore's own.)"""
    transport = httpx.AsyncHTTPTransport(**options)
    pool = getattr(transport, "_pool", None)
    if type(pool) is httpcore.AsyncConnectionPool and hasattr(pool, "_network_backend"):
        pool._network_backend = AsyncioBackend()
        linear(pool)
    return transport


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Connections made by the running loop (``create_connection``: its resolver, each
    address in turn, TCP_NODELAY), each read and written through an :class:`AsyncioStream`."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Buffered, host, port, local_addr=local
                )
        return _with_options(AsyncioStream(transport, protocol), socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_unix_connection(_Buffered, path)
        return _with_options(AsyncioStream(transport, protocol), socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection: asyncio's transport to write, :class:`_Buffered` to read from."""

    def __init__(self, transport: asyncio.Transport, protocol: _Buffered) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.unread and not protocol.ended:
            with _mapped(httpcore.ReadTimeout, httpcore.ReadError):
                await _within(protocol.arrival(), timeout)
        return protocol.take(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            raise httpcore.WriteError(protocol.why_lost())
        self._transport.write(buffer)
        if protocol.paused:
            with _mapped(httpcore.WriteTimeout, httpcore.WriteError):
                await _within(protocol.drained(), timeout)
            if protocol.lost:
                raise httpcore.WriteError(protocol.why_lost())

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
                async with asyncio.timeout(timeout):
                    transport = await loop.start_tls(
                        self._transport,
                        self._protocol,
                        ssl_context,
                        server_hostname=server_hostname,
                    )
        except BaseException:
            self._transport.close()
            raise
        if transport is None:  # the connection went away during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._protocol.connection_made(transport)  # pause and resume reading the TLS side
        return AsyncioStream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle connection with bytes or an end waiting: stale
            return bool(self._protocol.unread) or self._protocol.ended
        name = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        if name not in ("ssl_object", "sockname", "peername", "socket"):
            return None
        return self._transport.get_extra_info(name)


class _Buffered(asyncio.Protocol):
    """What has arrived on a connection, not yet read; the waits for more and for room."""

    def __init__(self) -> None:
        self.chunks: collections.deque[bytes | memoryview] = collections.deque()
        self.unread = 0
        self.ended = False  # the peer's end, or the connection lost
        self.lost = False
        self.error: Exception | None = None  # why it was lost, if not by a clean close
        self.paused = False  # our writes wait for the transport's buffer to drain
        self._reading_paused = False
        self._transport: asyncio.Transport | None = None
        self._arrival: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.unread += len(data)
        if self.unread > READ_HIGH_WATER and not self._reading_paused and self._transport:
            self._reading_paused = True
            self._transport.pause_reading()
        _wake(self._arrival)

    def eof_received(self) -> bool:
        self.ended = True
        _wake(self._arrival)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = self.lost = True
        self.error = exc
        _wake(self._arrival)
        _wake(self._drained)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        _wake(self._drained)

    def arrival(self) -> asyncio.Future[None]:
        self._arrival = asyncio.get_running_loop().create_future()
        return self._arrival

    def drained(self) -> asyncio.Future[None]:
        self._drained = asyncio.get_running_loop().create_future()
        return self._drained

    def why_lost(self) -> str:
        if self.error is None:
            return "the connection is closed"
        return f"the connection was lost: {self.error!r}"

    def take(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of what has arrived; b"" at the peer's end; ReadError if the
        connection broke."""
        if not self.chunks:
            if self.error is not None:
                raise httpcore.ReadError(self.why_lost())
            return b""
        first = self.chunks[0]
        if len(first) <= max_bytes:
            self.chunks.popleft()
            data = first if isinstance(first, bytes) else bytes(first)
        else:
            view = memoryview(first)
            data = bytes(view[:max_bytes])
            self.chunks[0] = view[max_bytes:]
        self.unread -= len(data)
        if self._reading_paused and self.unread <= READ_HIGH_WATER // 4 and self._transport:
            self._reading_paused = False
            self._transport.resume_reading()
        return data


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


async def _within(waiter: asyncio.Future[None], seconds: float | None) -> None:
    if seconds is None:
        await waiter
        return
    async with asyncio.timeout(seconds):
        await waiter


@contextlib.contextmanager
def _mapped(timed_out: type[Exception], failed: type[Exception]) -> Iterator[None]:
    """A timeout as ``timed_out``, an OS or TLS error as ``failed`` (httpcore's classes)."""
    try:
        yield
    except TimeoutError as exc:
        raise timed_out(str(exc) or "timed out") from exc
    except OSError as exc:  # ssl.SSLError and socket.gaierror are OSErrors too
        raise failed(str(exc) or type(exc).__name__) from exc


def _with_options(
    stream: AsyncioStream, options: Iterable[httpcore.SOCKET_OPTION] | None
) -> AsyncioStream:
    for option in options or ():
        stream.get_extra_info("socket").setsockopt(*option)
    return stream
