"""uvicorn's httptools protocol (the faster parser, ``tryon-core[speed]``) with the same
guard as the h11 one: :class:`~tryon_core.server.connections.ConnectionGuard`.

Imported only where httptools is installed (:mod:`~tryon_core.server.fast_paths`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from tryon_core.server.connections import ConnectionGate, ConnectionGuard

__all__ = ["GuardedHttpToolsProtocol"]


class GuardedHttpToolsProtocol(ConnectionGuard, HttpToolsProtocol):
    """httptools calls :meth:`on_message_begin` at a request's first byte and
    :meth:`on_headers_complete` once its headers are in: the header deadline runs between."""

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
        super().__init__(config, server_state, app_state, _loop)
        self.gate = gate
        self.header_timeout = header_timeout

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard_opened()

    def on_message_begin(self) -> None:
        self.awaiting_headers()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.headers_complete()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard_closed()
        super().connection_lost(exc)
