"""Named turns: the transactions of one process that will update the same hot row queue here.

Every generation updates its account's row (and its key's) twice: holding credits, then
settling. On PostgreSQL, concurrent transactions that update one row queue on that row's lock
inside the server, each holding a pooled connection while it waits; the holder, meanwhile,
waits for this process's busy event loop between its statements. Measured with one key at 32
requests in flight (2 cores): ~26 server processes sat waiting for one account's row, the pool
opened connections past its size, the server spent ~9 ms of CPU per request and the gateway
served ~130 requests/s. With at most :data:`WIDTH` such transactions in the server and the rest
queued here (before they check out a connection), the server spent ~3 ms per request and the
gateway served ~210/s (one at a time: ~185/s; a few let one transaction write its other rows
while another holds the hot row, see :func:`tryon_core.billing.reserve`).

Correctness never rests on a turn: the row locks still decide; several processes
(``--workers``, replicas) each take turns of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager

__all__ = ["WIDTH", "Turns"]

WIDTH = 4
"""How many transactions of one process may be in the server at once for one name."""


class Turns:
    """Semaphores by name, each kept only while somebody holds or waits for it."""

    __slots__ = ("_gates", "_width")

    def __init__(self, width: int = WIDTH) -> None:
        if width < 1:
            raise ValueError(f"a turn is at least 1 wide, not {width}")
        self._width = width
        self._gates: dict[Hashable, tuple[asyncio.Semaphore, list[int]]] = {}

    @asynccontextmanager
    async def turn(self, name: Hashable) -> AsyncIterator[None]:
        """Wait for one of ``name``'s places (first come, first served) and hold it for the
        block."""
        entry = self._gates.get(name)
        if entry is None:
            entry = self._gates[name] = (asyncio.Semaphore(self._width), [0])
        gate, users = entry
        users[0] += 1
        try:
            async with gate:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._gates[name]

    def __len__(self) -> int:
        """How many names somebody holds or waits for (0 when everything is done)."""
        return len(self._gates)
