"""uvicorn's httptools protocol (the faster parser, ``tryon-core[speed]``) with the same
guard as the h11 one (:class:`~tryon_core.server.connections.ConnectionGuard`), and a request
body handed to the app as the parser gave it.

uvicorn gathers a request's body chunks in a ``bytearray`` and gives the app ``bytes()`` of it:
two copies of every body byte before the app sees it (a 1.6 MB upload: ~0.3 ms of CPU). Here
the chunks are kept as they came (:class:`BodyPieces`) and a lone chunk, the usual case, reaches
the app as the very object httptools made; several waiting at once are joined once. The flow
control (uvicorn pauses reading past 64 KiB waiting) is unchanged: it reads only the length.

Imported only where httptools is installed (:mod:`~tryon_core.server.fast_paths`).
"""

from __future__ import annotations

from typing import Self

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tryon_core.server.connections import ConnectionGuard

__all__ = ["BodyPieces", "GuardedHttpToolsProtocol"]


class BodyPieces:
    """The body chunks received and not yet given to the app, in the three operations uvicorn's
    request cycle uses on its buffer: ``+=`` a chunk, ``len()``, and ``bytes()`` to hand over."""

    __slots__ = ("_pieces", "_size")

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._size = 0

    def __iadd__(self, piece: bytes) -> Self:
        if piece:
            self._pieces.append(piece)
            self._size += len(piece)
        return self

    def __len__(self) -> int:
        return self._size

    def __bytes__(self) -> bytes:
        if len(self._pieces) == 1 and type(piece := self._pieces[0]) is bytes:
            return piece
        return b"".join(self._pieces)


class GuardedHttpToolsProtocol(ConnectionGuard, HttpToolsProtocol):
    """httptools calls :meth:`on_message_begin` at a request's first byte and
    :meth:`on_headers_complete` once its headers are in: the header deadline runs between."""

    def on_message_begin(self) -> None:
        self.awaiting_headers()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.headers_complete()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if not isinstance(cycle.body, BodyPieces):  # a new request, or the app took the last
            pieces = BodyPieces()
            pieces += bytes(cycle.body)  # empty: uvicorn starts and restarts with bytearray()
            cycle.body = pieces  # type: ignore[assignment]
        super().on_body(body)
