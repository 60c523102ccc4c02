"""One process's LISTEN/NOTIFY connection to the deployment's PostgreSQL: what job events (and
job pickup by ``tryon worker``) go through where there is no ``[redis] url``.

:class:`PgLink` owns one plain asyncpg connection, outside SQLAlchemy's pool, and one task that
does everything on it (asyncpg runs one operation at a time on a connection): it LISTENs on
every registered channel, sends the queued notifications (``SELECT pg_notify``, all that are
waiting in one statement), and pings the server when nothing happened for ``timeout`` seconds.

- :meth:`~PgLink.send` never blocks or raises: notifications wait in a bounded queue; while
  the connection is away they wait there, and beyond the bound they are dropped and counted
  (:attr:`~PgLink.dropped`).
- A notification reaches the ``receive`` of its channel in every *other* process: the
  connection's own notifications (same server process id) are skipped, their sender handled
  them locally.
- If the connection drops or stops answering it is replaced, with backoff; once it listens
  again every channel's ``resync`` runs (notifications may have been missed meanwhile).

Channel names are fixed (``tryon_job_events``, ``tryon_jobs``): PostgreSQL scopes them to the
database, and one database is one deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["PgLink"]

log = logging.getLogger("tryon.pg")

QUEUE_LIMIT = 1000
"""Notifications waiting at most; beyond it new ones are dropped (the connection is away)."""
RETRY_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
"""Waits between attempts to re-establish the connection (the last one repeats)."""
_NOTIFY = "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)"

Connect = Callable[[], Awaitable[Any]]
"""Opens a plain asyncpg connection to the database."""


def _ignore() -> None:
    return None


@dataclass
class _Listener:
    receive: Callable[[str], None]
    resync: Callable[[], None]


class _Lost(Exception):
    """The connection was closed under us."""


class PgLink:
    """The LISTEN/NOTIFY connection of one process. Channels may be registered (and dropped)
    at any time; a channel registered while connected is listened to within moments."""

    def __init__(self, connect: Connect, *, timeout: float) -> None:
        self._connect = connect
        self._timeout = timeout
        self._listeners: dict[str, _Listener] = {}
        self._pending: deque[tuple[str, str]] = deque()
        self._wakeup = asyncio.Event()
        self._ready = asyncio.Event()
        self._followed = asyncio.Event()
        self._listening: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._pid: int | None = None
        self._down = False
        self.dropped = 0
        """Notifications lost (failed, or refused by a full queue) since start."""

    def listen(
        self, channel: str, receive: Callable[[str], None], resync: Callable[[], None] = _ignore
    ) -> None:
        """Hand each notification on ``channel`` (from another process) to ``receive``; call
        ``resync`` each time the connection listens again after a loss."""
        self._listeners[channel] = _Listener(receive, resync)
        self._wakeup.set()

    async def listening(self) -> None:
        """Wait until every registered channel is listened to (at most ``timeout`` seconds;
        never raises: if the connection is away, the channels are listened to once it is back)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                while not self._listeners.keys() <= self._listening:
                    self._followed.clear()
                    self._wakeup.set()
                    await self._followed.wait()

    def unlisten(self, channel: str) -> None:
        self._listeners.pop(channel, None)
        self._wakeup.set()

    def send(self, channel: str, payload: str) -> None:
        """Notify ``channel`` soon, in the background: never blocks, never raises. Dropped
        (and counted) when the queue is full or the link is not running."""
        if self._task is None or len(self._pending) >= QUEUE_LIMIT:
            self.dropped += 1
            return
        self._pending.append((channel, payload))
        self._wakeup.set()

    async def start(self) -> None:
        """Connect and listen, waiting up to ``timeout`` seconds for it; if the database does
        not answer by then, the link keeps trying in the background (never raises)."""
        for name in ("_ready", "_wakeup", "_followed"):  # of this event loop
            setattr(self, name, asyncio.Event())
        self._task = asyncio.create_task(self._run_forever())
        try:
            async with asyncio.timeout(self._timeout):
                await self._ready.wait()
        except TimeoutError:
            log.warning("LISTEN/NOTIFY: not connected yet; trying again in the background")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run_forever(self) -> None:
        failures = 0
        while True:
            conn = None
            try:
                conn = await asyncio.wait_for(self._connect(), self._timeout)
                await self._serve(conn)
            except asyncio.CancelledError:  # closing: say goodbye to the server
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 1.0)
                raise
            except Exception as exc:  # OSError, asyncpg's errors, TimeoutError, _Lost
                if self._ready.is_set():  # it had listened: count again from the shortest wait
                    failures = 0
                self._ready.clear()
                if not self._down:
                    self._down = True
                    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                    log.warning("LISTEN/NOTIFY: the database connection is lost (%s)", reason)
            finally:
                self._pid = None
                self._listening = set()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
            failures += 1

    async def _serve(self, conn: Any) -> None:
        """Listen, resync, then send and ping on ``conn`` until it fails (raises)."""
        lost = asyncio.Event()

        def closed(_: Any) -> None:
            lost.set()
            self._wakeup.set()

        conn.add_termination_listener(closed)
        self._pid = conn.get_server_pid()
        async with asyncio.timeout(self._timeout):
            await self._follow(conn)
        if self._down:
            self._down = False
            log.warning("LISTEN/NOTIFY: listening again")
        self._ready.set()
        for listener in list(self._listeners.values()):
            _guarded(listener.resync)
        idle = max(self._timeout, 1.0)
        while True:
            quiet = False
            try:
                async with asyncio.timeout(idle):
                    await self._wakeup.wait()
            except TimeoutError:
                quiet = True
            self._wakeup.clear()
            if lost.is_set() or conn.is_closed():
                raise _Lost("the connection was closed")
            async with asyncio.timeout(self._timeout):  # a server that stops answering
                await self._follow(conn)
                if self._pending:
                    await self._flush(conn)
                elif quiet:
                    await conn.execute("SELECT 1")

    async def _follow(self, conn: Any) -> None:
        """LISTEN to the channels registered since, UNLISTEN the ones dropped."""
        listening = self._listening
        for channel in [c for c in self._listeners if c not in listening]:
            await conn.add_listener(channel, self._notified)
            listening.add(channel)
        for channel in [c for c in listening if c not in self._listeners]:
            await conn.remove_listener(channel, self._notified)
            listening.discard(channel)
        self._followed.set()

    async def _flush(self, conn: Any) -> None:
        batch = list(self._pending)
        self._pending.clear()
        channels, payloads = [c for c, _ in batch], [p for _, p in batch]
        try:
            await conn.execute(_NOTIFY, channels, payloads)
        except BaseException:
            self.dropped += len(batch)
            raise

    def _notified(self, _conn: Any, pid: int, channel: str, payload: str) -> None:
        if pid == self._pid:  # this process's own: handled when it was sent
            return
        listener = self._listeners.get(channel)
        if listener is not None:
            _guarded(listener.receive, payload)


def _guarded(call: Callable[..., None], *args: Any) -> None:
    try:
        call(*args)
    except Exception:  # a malformed notification must not end the connection
        log.exception("LISTEN/NOTIFY: a handler failed")
