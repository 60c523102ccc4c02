"""PostgreSQL write transactions on connections kept checked out between them.

A write transaction that checks a connection out of SQLAlchemy's pool, begins, commits and
returns it runs four of SQLAlchemy's steps, each in a greenlet of its own with the pool's
bookkeeping and events: measured on this machine, ~550 us of CPU for a transaction whose
BEGIN and COMMIT cost the driver ~115 us (two per sync request: ~7% of a big try-on's CPU).

So a write transaction's connection is not given back to the pool when it commits: up to
``most`` of them per event loop stay checked out, idle, outside any transaction, and the next
write transaction takes one. Its BEGIN goes to the server straight through the driver
(SQLAlchemy's adapter begins as it always does, and SQLAlchemy's own transaction is begun as
bookkeeping: its events fire, and statements run as in any transaction); its COMMIT too, after
what waits to go with the next statement (:meth:`tryon_core.db.prepared.Prepared.defer`), and
SQLAlchemy's transaction then ends without a round trip of its own.

The BEGIN is the kept connection's check, as it is a fresh checkout's
(``tryon_core.db.engine._ping_at_checkout``): a connection that died while kept (the server
restarted, an idle timeout) fails it and is dropped, and the next kept one, or a fresh checkout,
is taken instead. Anything that fails on the way out (a COMMIT refused, a deferred write's
error) or a transaction that does not commit gives its connection back to the pool the ordinary
way, where SQLAlchemy rolls back what is left: only a connection that committed cleanly is
kept. Idle connections are held, never in a transaction, so they hold no snapshot or lock;
the pool has them counted as checked out (:meth:`Kept.idle` says how many).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.db.prepared import driver_error, run_deferred

__all__ = ["Kept"]

_GONE = (OperationalError, InterfaceError, OSError)


class Kept:
    """The connections of one event loop kept between write transactions (see the module)."""

    __slots__ = ("_idle", "most")

    def __init__(self, most: int) -> None:
        self.most = most
        self._idle: list[AsyncConnection] = []

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def begun(self, fresh: Callable[[], Awaitable[AsyncConnection]]) -> AsyncConnection:
        """A connection in a write transaction whose BEGIN the server has: a kept one, or
        ``fresh()`` (a checkout that begins) when none is kept or none answers."""
        while self._idle:
            conn = self._idle.pop()  # the last kept: likeliest alive
            if await _began(conn):
                return conn
        return await fresh()

    async def committed(self, conn: AsyncConnection) -> None:
        """Commit ``conn``'s transaction and keep the connection (up to ``most``); if anything
        fails, the connection goes back to the pool (rolled back) and the error is raised."""
        try:
            await _commit(conn)
        except BaseException:
            with contextlib.suppress(*_GONE):
                await conn.close()
            raise
        if len(self._idle) < self.most and _reusable(conn):
            self._idle.append(conn)
        else:
            await conn.close()

    async def close(self) -> None:
        """Give every kept connection back to the pool (on this event loop)."""
        while self._idle:
            with contextlib.suppress(*_GONE):
                await self._idle.pop().close()

    def abandon(self) -> None:
        """Drop every kept connection of an event loop that is gone: each is closed at once,
        without a word to the server (it sees the connection end)."""
        while self._idle:
            sync = self._idle.pop().sync_connection
            if sync is not None:
                with contextlib.suppress(Exception):
                    sync.invalidate()
                    sync.close()


async def _began(conn: AsyncConnection) -> bool:
    """Begin a kept connection's transaction; False (and the connection dropped) if it is no
    longer fit for one."""
    sync = conn.sync_connection
    if sync is None or not _reusable(conn):
        return False
    sync.begin()  # SQLAlchemy's side: bookkeeping and its events (its asyncpg adapter waits)
    adapter: Any = sync.connection.dbapi_connection
    try:
        await adapter._start_transaction()  # BEGIN, as the adapter sends it itself
    except Exception:
        with contextlib.suppress(*_GONE):
            await conn.invalidate()
            await conn.close()
        return False
    return True


async def _commit(conn: AsyncConnection) -> None:
    sync = conn.sync_connection
    assert sync is not None
    await run_deferred(sync)
    adapter: Any = sync.connection.dbapi_connection
    if adapter._transaction is not None:
        try:
            await adapter._call_and_discard(adapter._transaction.commit)
        except Exception as error:
            raise driver_error(sync, adapter, "COMMIT", (), error) from error
    sync.commit()  # SQLAlchemy's side: its events; the adapter has nothing left to send


def _reusable(conn: AsyncConnection) -> bool:
    sync = conn.sync_connection
    return (
        sync is not None
        and not sync.closed
        and not sync.invalidated
        and not sync.in_transaction()
        and not sync.get_execution_options()
    )
