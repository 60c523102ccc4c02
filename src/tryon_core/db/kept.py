"""Write transactions on connections kept checked out between them.

A write transaction that checks a connection out of SQLAlchemy's pool, begins, commits and
returns it runs four of SQLAlchemy's steps, each in a greenlet of its own with the pool's
bookkeeping and events, and two of them in a task of their own (:mod:`tryon_core.uninterrupted`).
Measured on this machine: ~550 us of CPU on PostgreSQL for a transaction whose BEGIN and COMMIT
cost the driver ~115 us, ~415 us on SQLite for what SQLite itself does in ~40 us; and a sync
request runs two.

So a write transaction's connection is not given back to the pool when it commits: up to
``most`` of them per event loop stay checked out, idle, outside any transaction, and the next
write transaction takes one. Its BEGIN and COMMIT go to the driver straight (:class:`Steps`:
:class:`PostgresSteps` here, SQLite's in :mod:`tryon_core.db.engine`), and SQLAlchemy's own
transaction is begun and ended around them as bookkeeping: its events fire, and statements
run as in any transaction.

The BEGIN is also the kept connection's check on PostgreSQL, as it is a fresh checkout's: one
that died while kept (the server restarted, an idle timeout) fails it and is dropped with every
other idle one (they are likely gone too), and a fresh checkout serves instead. Anything that
fails on the way in or out (a BEGIN that waited too long for SQLite's lock, a COMMIT refused, a
deferred write's error), and a transaction that does not commit, gives its connection back to
the pool the ordinary way, where SQLAlchemy rolls back what is left: only a connection that
committed cleanly is kept. Idle connections hold no transaction, so no snapshot and no lock; the
pool counts them as checked out (:attr:`Kept.idle` says how many).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.db.prepared import driver_error, run_deferred
from tryon_core.uninterrupted import uninterrupted

__all__ = ["Kept", "PostgresSteps", "Steps"]

_GONE = (OperationalError, InterfaceError, OSError)


class Steps(Protocol):
    """How a kept connection's transaction begins and commits, on one kind of database. Each
    runs to its end whatever is cancelled (:mod:`tryon_core.uninterrupted`)."""

    async def begin(self, conn: AsyncConnection) -> bool:
        """Begin; False if the connection is no longer fit (it is dropped), or raise (it goes
        back to the pool, and the caller is answered with the error)."""
        ...

    async def commit(self, conn: AsyncConnection) -> None: ...


class Kept:
    """The connections of one event loop kept between write transactions (see the module)."""

    __slots__ = ("_idle", "_steps", "most")

    def __init__(self, most: int, steps: Steps) -> None:
        self.most = most
        self._steps = steps
        self._idle: list[AsyncConnection] = []

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def begun(self, fresh: Callable[[], Awaitable[AsyncConnection]]) -> AsyncConnection:
        """A connection in a write transaction already begun: a kept one, or ``fresh()`` (a
        checkout that begins) when none is kept or the one kept is gone."""
        if self._idle:
            conn = self._idle.pop()  # the last kept: likeliest alive
            try:
                began = _reusable(conn) and await self._steps.begin(conn)
            except BaseException:
                await _given_back(conn)
                raise
            if began:
                return conn
            await _dropped(conn)
            while self._idle:  # one gone: the others likely too (a server restart)
                await _dropped(self._idle.pop())
        return await fresh()

    async def committed(self, conn: AsyncConnection) -> None:
        """Commit ``conn``'s transaction and keep the connection (up to ``most``); if anything
        fails, the connection goes back to the pool (rolled back) and the error is raised."""
        try:
            await self._steps.commit(conn)
        except BaseException:
            await _given_back(conn)
            raise
        if len(self._idle) < self.most and _reusable(conn):
            self._idle.append(conn)
        else:
            await _given_back(conn)

    async def close(self) -> None:
        """Give every kept connection back to the pool (on this event loop)."""
        while self._idle:
            await _given_back(self._idle.pop())

    def abandon(self) -> None:
        """Drop every kept connection of an event loop that is gone: each is closed at once,
        without a word to the server (it sees the connection end)."""
        while self._idle:
            sync = self._idle.pop().sync_connection
            if sync is not None:
                with contextlib.suppress(Exception):
                    sync.invalidate()
                    sync.close()


class PostgresSteps:
    """BEGIN and COMMIT as SQLAlchemy's asyncpg adapter sends them, without SQLAlchemy's
    execution around them; what waits for the next statement (:meth:`Prepared.defer
    <tryon_core.db.prepared.Prepared.defer>`) goes before the COMMIT."""

    async def begin(self, conn: AsyncConnection) -> bool:
        sync = conn.sync_connection
        assert sync is not None
        sync.begin()  # SQLAlchemy's side: bookkeeping and its events; the adapter sends nothing
        adapter: Any = sync.connection.dbapi_connection
        try:
            await uninterrupted(adapter._start_transaction())
        except Exception:
            return False  # gone (a server restart, an idle timeout): the caller drops it
        return True

    async def commit(self, conn: AsyncConnection) -> None:
        await uninterrupted(_postgres_commit(conn))


async def _postgres_commit(conn: AsyncConnection) -> None:
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


async def _given_back(conn: AsyncConnection) -> None:
    """Back to the pool, rolled back if a transaction is left (a connection gone: discarded)."""
    with contextlib.suppress(*_GONE):
        await uninterrupted(conn.close())


async def _dropped(conn: AsyncConnection) -> None:
    with contextlib.suppress(*_GONE):
        await uninterrupted(conn.invalidate())
    await _given_back(conn)


def _reusable(conn: AsyncConnection) -> bool:
    sync = conn.sync_connection
    return (
        sync is not None
        and not sync.closed
        and not sync.invalidated
        and not sync.in_transaction()
        and not sync.get_execution_options()
    )
