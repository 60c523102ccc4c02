"""Bounds on the connections ``tryon serve`` holds open, so that slow or silent clients cannot
take every file descriptor.

uvicorn closes a connection idle between two requests (``timeout_keep_alive``), but nothing
bounds a connection that sends its request headers slowly or sends nothing at all, nor how
many connections one client may open. :class:`GuardedH11Protocol`, uvicorn's h11 protocol
with three additions (:class:`ConnectionGuard`), does; so does
:class:`~tryon_core.server.httptools_guard.GuardedHttpToolsProtocol` for httptools:

- **header timeout**: a connection must deliver complete request headers within
  ``header_timeout`` seconds of opening, or of the first byte of its next request; else it is
  closed. Trickling one byte at a time does not extend it.
- **per-client and total limits**: :class:`ConnectionGate` counts open connections (HTTP and
  WebSocket alike) by client address. A connection past ``max_per_client`` from one address
  is answered ``429`` and closed; one past ``max_connections`` in all, ``503``. Both answers
  are the error envelope, written at once, before any request is read.

Each process of ``tryon serve --workers N`` has its own gate: the limits count per process.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from typing import Any

import h11
import msgspec
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from tryon_core.api.errors import ErrorBody, ErrorEnvelope

__all__ = ["ConnectionGate", "ConnectionGuard", "GuardedH11Protocol"]

log = logging.getLogger("tryon.server")


class ConnectionGate:
    """Open connections, by client address; admits a new one only within the limits.

    A connection counts from :meth:`admit` until its transport closes. A WebSocket upgrade
    hands the transport to another protocol object, so closed transports are also swept up
    at each admission rather than relied on to report their end.
    """

    def __init__(self, *, max_connections: int, max_per_client: int) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self._open: dict[asyncio.BaseTransport, str] = {}
        self._per_client: Counter[str] = Counter()

    def admit(self, transport: asyncio.BaseTransport, client: str | None) -> bytes | None:
        """None: admitted. Else the answer to write before closing the connection."""
        self._sweep()
        address = client or ""
        if len(self._open) >= self.max_connections:
            log.info("refused a connection from %s: %d open in all", address, len(self._open))
            return _SERVER_FULL
        if client and self.max_per_client and self._per_client[address] >= self.max_per_client:
            log.info(
                "refused a connection from %s: %d open from that address",
                address,
                self._per_client[address],
            )
            return _CLIENT_FULL
        self._open[transport] = address
        self._per_client[address] += 1
        return None

    def release(self, transport: asyncio.BaseTransport) -> None:
        address = self._open.pop(transport, None)
        if address is not None:
            self._per_client[address] -= 1
            if not self._per_client[address]:
                del self._per_client[address]

    def _sweep(self) -> None:
        for transport in [t for t in self._open if t.is_closing()]:
            self.release(transport)


class ConnectionGuard(asyncio.Protocol):
    """What both guarded protocols add to uvicorn's, placed before it in their bases:
    admission by a :class:`ConnectionGate` and the header timeout. The parser-specific part
    calls :meth:`awaiting_headers` and :meth:`headers_complete` as its parser sees those
    moments."""

    gate: ConnectionGate
    header_timeout: float
    header_timer: asyncio.TimerHandle | None = None
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    client: tuple[str, int] | None

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        gate: ConnectionGate,
        header_timeout: float,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)  # type: ignore[call-arg]
        self.gate = gate
        self.header_timeout = header_timeout

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard_opened()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard_closed()
        super().connection_lost(exc)

    def guard_opened(self) -> bool:
        """After the transport is set: False (refused, answered and closed) or True."""
        refusal = self.gate.admit(self.transport, _address(self.client))
        if refusal is not None:
            self.transport.write(refusal)
            self.transport.close()
            return False
        self.awaiting_headers()
        return True

    def awaiting_headers(self) -> None:
        """A request has begun (or may begin): its headers are due within the timeout. A
        deadline already running is kept (trickled bytes do not extend it)."""
        if self.header_timer is None:
            self.header_timer = self.loop.call_later(self.header_timeout, self._headers_overdue)

    def headers_complete(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def guard_closed(self) -> None:
        self.headers_complete()
        self.gate.release(self.transport)

    def _headers_overdue(self) -> None:
        self.header_timer = None
        if not self.transport.is_closing():
            log.info(
                "closed a connection from %s: no complete request headers within %g s",
                _address(self.client),
                self.header_timeout,
            )
            self.transport.close()


class GuardedH11Protocol(ConnectionGuard, H11Protocol):
    """uvicorn's h11 protocol, behind a :class:`ConnectionGate` and with a header timeout."""

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self.awaiting_headers()  # the first byte of the next request on a kept-alive one
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self.headers_complete()


def _address(client: tuple[str, int] | None) -> str | None:
    """The client's IP address; an IPv4 address mapped into IPv6 counts as the IPv4 one."""
    if client is None:
        return None
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return client[0]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _answer(status: int, phrase: str, type: str, message: str) -> bytes:
    body = msgspec.json.encode(
        ErrorEnvelope(error=ErrorBody(code=status, message=message, type=type))
    )
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "retry-after: 1\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


_CLIENT_FULL = _answer(
    429,
    "Too Many Requests",
    "rate_limit_exceeded",
    "Too many open connections from this address; close some and retry.",
)
_SERVER_FULL = _answer(
    503,
    "Service Unavailable",
    "service_unavailable",
    "The gateway has too many open connections; retry shortly.",
)
