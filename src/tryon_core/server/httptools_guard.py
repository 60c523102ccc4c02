"""uvicorn's httptools protocol (the faster parser, ``tryon-core[speed]``) with the same
guard as the h11 one: :class:`~tryon_core.server.connections.ConnectionGuard`.

Imported only where httptools is installed (:mod:`~tryon_core.server.fast_paths`).
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tryon_core.server.connections import ConnectionGuard

__all__ = ["GuardedHttpToolsProtocol"]


class GuardedHttpToolsProtocol(ConnectionGuard, HttpToolsProtocol):
    """httptools calls :meth:`on_message_begin` at a request's first byte and
    :meth:`on_headers_complete` once its headers are in: the header deadline runs between."""

    def on_message_begin(self) -> None:
        self.awaiting_headers()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.headers_complete()
        super().on_headers_complete()
