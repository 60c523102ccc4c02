"""Create the async engine for SQLite (embedded default) or PostgreSQL, and migrate it."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncTransaction,
    create_async_engine,
)
from sqlalchemy.util import await_, greenlet_spawn

from tryon_core.db.checkpoints import WAL_LIMIT_BYTES, Checkpointer
from tryon_core.db.kept import Kept, PostgresSteps, Steps
from tryon_core.db.prepared import defer_writes
from tryon_core.db.turns import Turns
from tryon_core.errors import InvalidRequest, ServiceUnavailable
from tryon_core.uninterrupted import uninterrupted

__all__ = ["Database", "create_database", "sqlite_takes_a_write"]

_MIGRATIONS = Path(__file__).with_name("migrations")
T = TypeVar("T")


@dataclass
class Database:
    engine: AsyncEngine
    checkpointer: Checkpointer | None = None
    """SQLite: its checkpoints run in a thread of their own (:mod:`tryon_core.db.checkpoints`)."""
    _writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    """SQLite's writers of one event loop queue here (an asyncio lock serves one loop; a
    test's client may run the app in a loop of its own, beside the test's)."""

    _turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Turns] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    """PostgreSQL's transactions of one event loop that name a hot row take turns here."""

    keep: int = 1
    """Write transactions' connections kept checked out between them, per event loop, at most
    (:mod:`tryon_core.db.kept`; SQLite has one writer at a time); 0: each goes back to the
    pool."""
    _kept: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Kept] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    @property
    def _writer(self) -> asyncio.Lock:
        return _of_this_loop(self._writers, asyncio.Lock)

    @property
    def _turns_of_this_loop(self) -> Turns:
        return _of_this_loop(self._turns, Turns)

    @property
    def _kept_of_this_loop(self) -> Kept:
        return _of_this_loop(self._kept, lambda: Kept(self.keep, self._steps()))

    def _steps(self) -> Steps:
        """How a kept connection begins and commits here (:mod:`tryon_core.db.kept`)."""
        if self.is_sqlite:
            return _SqliteSteps(commits_inline=self.checkpointer is not None)
        return PostgresSteps()

    def connections_in_use(self) -> int:
        """Connections checked out of the pool and not kept idle (:mod:`tryon_core.db.kept`):
        0 when nothing runs."""
        checked_out: int = self.engine.pool.checkedout()  # type: ignore[attr-defined]
        return checked_out - sum(kept.idle for kept in self._kept.values())

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def upgrade(self) -> None:
        """Apply every migration up to head; safe to run on an up-to-date database, and by many
        processes at once: the first migrates, the others wait for it and find nothing to do.

        The upgrade takes the database's lock before Alembic reads the version: PostgreSQL, an
        advisory lock held until the upgrade's transaction ends; SQLite, the write lock
        (``BEGIN IMMEDIATE``, as every transaction here begins). Alembic's context is global to
        the process, so upgrades within one process also take turns.
        """
        async with _turn_in_this_process():
            try:
                async with self.engine.begin() as conn:
                    if not self.is_sqlite:
                        await conn.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                        )
                    await conn.run_sync(_upgrade)
            except _OUTAGE as exc:
                raise _unavailable() from exc

    @asynccontextmanager
    async def transaction(self, *, turn: str | None = None) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on exit. An unreachable database becomes a 503.

        SQLite has one writer at a time: writers of this process queue on a lock instead of
        polling the database's busy handler, whose sleeps make long tails under load.
        PostgreSQL: ``turn`` names the hot row the transaction will update (an account's id);
        this process's transactions that name the same one take turns before they check out a
        connection, instead of queueing on the row's lock in the server (see
        :mod:`tryon_core.db.turns`).

        A cancellation never cuts the transaction's own steps in half: checking out, BEGIN,
        COMMIT or ROLLBACK and returning the connection run to their end (see
        :mod:`tryon_core.uninterrupted`). Cancelled inside the body, the transaction rolls back
        and the writer is free again; cancelled during the commit, the commit completes and the
        cancellation takes effect at the caller's next ``await``.
        """
        writer: contextlib.AbstractAsyncContextManager[Any]
        if self.is_sqlite:
            writer = self._writer
        elif turn is not None:
            writer = self._turns_of_this_loop.turn(turn)
        else:
            writer = contextlib.nullcontext()
        async with writer, self._kept_transaction() as conn:
            yield conn

    @asynccontextmanager
    async def _kept_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, on a connection kept between them if there is one
        (:mod:`tryon_core.db.kept`); its BEGIN and its COMMIT each run to their end, and its
        errors are answered as :meth:`_connection`'s are."""
        kept = self._kept_of_this_loop
        conn = await _answered(kept.begun(self._checked_out_begun))
        try:
            yield conn
        except BaseException as exc:
            with contextlib.suppress(ServiceUnavailable):  # gone: closing discards it
                await _guarded(_closed(conn, conn.get_transaction(), commit=False))
            _raise_as_answer(exc)
            raise
        await _answered(kept.committed(conn))  # a deferred write's NUL: 400

    async def _checked_out_begun(self) -> AsyncConnection:
        """A connection checked out of the pool, its BEGIN standing in for the ping."""
        conn = self.engine.connect()
        token = _AT_CHECKOUT.set("begin")
        try:
            await _guarded(_opened(conn, begin=True, read_only=False))
        finally:
            _AT_CHECKOUT.reset(token)
        return conn

    @asynccontextmanager
    async def reading(self, *, checked: bool = True) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only (no BEGIN IMMEDIATE on SQLite). ``checked=False``:
        PostgreSQL's is handed out without its checkout's ping (see :meth:`read`)."""
        async with self._connection(
            checkout="ping" if checked else "nothing", read_only=True
        ) as conn:
            yield conn

    async def read(self, reads: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``reads(conn)``: statements that only read, so it may run twice. PostgreSQL's
        connection is handed out without a ping, its first statement checking it instead (a
        round trip fewer). If the driver fails it (cut while in the pool, the server restarted:
        asyncpg does not always say so plainly), that connection is dropped and ``reads`` runs
        again on one checked as usual, where an error is the caller's."""
        if not self.is_sqlite:
            try:
                async with self.reading(checked=False) as conn:
                    try:
                        return await reads(conn)
                    except DBAPIError:
                        await _guarded(conn.invalidate())
                        raise _Unchecked() from None
            except _Unchecked:
                pass
        async with self.reading() as conn:
            return await reads(conn)

    @asynccontextmanager
    async def _connection(
        self, *, checkout: str = "ping", read_only: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        """A pooled connection, checked out and returned whole whatever is cancelled (write
        transactions take theirs through :meth:`_kept_transaction`).

        ``checkout``, PostgreSQL: ``"ping"`` checks the connection, ``"nothing"`` hands it out
        as it is (see :func:`_ping_at_checkout`). ``read_only``: for reads only (no BEGIN
        IMMEDIATE on SQLite).

        Its life is two steps, each run to its end (see :mod:`tryon_core.uninterrupted`): the
        checkout with its read-only mark (:func:`_opened`), and the ROLLBACK of what it began
        with the return to the pool (:func:`_closed`). Two steps, not four: each costs a task
        and a turn or two of the event loop."""
        conn = self.engine.connect()
        token = _AT_CHECKOUT.set(checkout)
        try:
            await _guarded(_opened(conn, begin=False, read_only=read_only))
        finally:
            _AT_CHECKOUT.reset(token)
        try:
            yield conn
        except BaseException as exc:
            with contextlib.suppress(ServiceUnavailable):  # gone: closing discards it
                await _guarded(_closed(conn, None, commit=False))
            _raise_as_answer(exc)
            raise
        await _guarded(_closed(conn, None, commit=True))

    async def ping(self) -> None:
        async with self.reading() as conn:
            await conn.execute(text("SELECT 1"))

    async def check_writable(self, *, wait: float = 1.0) -> None:
        """Raise 503 unless a write transaction could start within ``wait`` seconds.

        SQLite: another connection takes the write lock and lets it go (a lock held by anyone,
        in this process or another, shows). PostgreSQL: the server answers and is not a
        read-only standby.
        """
        if self.is_sqlite:
            path = self.engine.url.database or ""
            on_disk = path and path != ":memory:" and not path.startswith("file:")
            if on_disk and not await asyncio.to_thread(sqlite_takes_a_write, path, wait=wait):
                raise ServiceUnavailable(
                    "The database cannot take a write: its write lock is held.",
                    retry_after=5,
                )
            return
        async with self.reading() as conn:
            if await conn.scalar(text("SELECT pg_is_in_recovery()")):
                raise ServiceUnavailable("The database is a read-only standby.", retry_after=5)

    async def connect_plain(self, *, application_name: str) -> Any:
        """A PostgreSQL connection of its own (asyncpg's, outside the pool) to the same database,
        with the same credentials and options, named ``application_name`` (``pg_stat_activity``
        shows it): for LISTEN, which needs one connection for good. The caller bounds the wait."""
        import asyncpg  # type: ignore[import-untyped]

        _, options = self.engine.dialect.create_connect_args(self.engine.url)
        for sqlalchemy_only in _SQLALCHEMY_OPTIONS:
            options.pop(sqlalchemy_only, None)
        settings = {**options.pop("server_settings", {}), "application_name": application_name}
        return await asyncpg.connect(**options, server_settings=settings)

    async def dispose(self) -> None:
        running = asyncio.get_running_loop()
        for loop, kept in list(self._kept.items()):
            if loop is running:
                await kept.close()
            else:
                kept.abandon()
        await self.engine.dispose()
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)


class _Unchecked(Exception):
    """An unchecked connection failed a read: run it again on a checked one."""


_SQLALCHEMY_OPTIONS = ("prepared_statement_cache_size", "prepared_statement_name_func")
"""Options of a PostgreSQL URL that SQLAlchemy's asyncpg dialect takes for itself."""
_OUTAGE = (OperationalError, InterfaceError, OSError)
_MIGRATION_LOCK = 0x7472796F6E2D6D67
"""The PostgreSQL advisory lock key of migrations ("tryon-mg")."""
_UPGRADES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _turn_in_this_process() -> asyncio.Lock:
    """The lock that upgrades in this process (on this event loop) take turns with."""
    return _of_this_loop(_UPGRADES, asyncio.Lock)


def _of_this_loop(
    table: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T], make: Callable[[], T]
) -> T:
    """The running event loop's entry of ``table``, made on first use (an asyncio lock or
    semaphore serves one loop; a test's client may run the app in a loop of its own)."""
    loop = asyncio.get_running_loop()
    entry = table.get(loop)
    if entry is None:
        entry = table[loop] = make()
    return entry


async def _opened(
    conn: AsyncConnection, *, begin: bool, read_only: bool
) -> AsyncTransaction | None:
    """Check ``conn`` out and begin its transaction (``begin``) or mark it for reads only: one
    step. Whole or not at all: a connection whose BEGIN fails is returned before the error is
    raised."""
    await conn.start()
    async with _returned_if_failing(conn):
        if read_only:
            await conn.execution_options(tryon_read_only=True)
        if not begin:
            return None
        transaction = conn.begin()
        await transaction.start()
        return transaction


async def _closed(
    conn: AsyncConnection, transaction: AsyncTransaction | None, *, commit: bool
) -> None:
    """End ``conn``'s transaction, if it has one (``commit``, or roll it back), and return the
    connection to its pool: one step. A failed COMMIT or ROLLBACK still returns it (SQLAlchemy
    rolls back what is left), then raises."""
    async with _returned_if_failing(conn):
        if transaction is not None:
            await (transaction.commit() if commit else transaction.rollback())
    await conn.close()


@asynccontextmanager
async def _returned_if_failing(conn: AsyncConnection) -> AsyncIterator[None]:
    """What fails inside returns ``conn`` to its pool before the failure is raised (the
    database gone meanwhile: closing discards it, and the failure is what is raised)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(*_OUTAGE):
            await conn.close()
        raise


def _raise_as_answer(exc: BaseException) -> None:
    """Raise what a client is answered for a database error, if it is not ``exc`` itself: an
    outage, 503; PostgreSQL refusing a NUL character in text (a client's input), 400."""
    if isinstance(exc, _OUTAGE):
        raise _unavailable() from exc
    if isinstance(exc, DBAPIError) and _nul_character(exc):  # PostgreSQL's; SQLite's text holds it
        raise InvalidRequest(
            "Text in this request contains a NUL character (\\u0000), which no "
            "name, id or value here may contain."
        ) from None


async def _guarded(step: Awaitable[T]) -> T:
    """One step of a connection's life, run to its end; its error becomes the client's answer
    (:func:`_raise_as_answer`: an outage, 503)."""
    return await _answered(uninterrupted(step))


async def _answered(step: Awaitable[T]) -> T:
    """``step``'s result; its error becomes the client's answer (:func:`_raise_as_answer`)."""
    try:
        return await step
    except BaseException as exc:
        _raise_as_answer(exc)
        raise


def sqlite_takes_a_write(path: str | os.PathLike[str], *, wait: float = 0.0) -> bool:
    """Another connection can take the SQLite database's write lock within ``wait`` seconds."""
    probe = sqlite3.connect(path, timeout=wait, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


def _nul_character(exc: DBAPIError) -> bool:
    """PostgreSQL's refusal of a NUL character in text (a client's input, never ours)."""
    return "0x00" in str(exc.orig) and "invalid byte sequence" in str(exc.orig)


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("The database is unavailable; try again shortly.", retry_after=5)


def create_database(
    url: str,
    *,
    timeout: float = 10.0,
    pool_size: int = 20,
    own_checkpoints: bool = False,
    **engine_options: Any,
) -> Database:
    """The database at ``url``. On PostgreSQL, ``timeout`` bounds connecting and every
    statement, so a server that stops answering is an outage (503), not a hung request.

    ``own_checkpoints`` (a long-lived process: the gateway, a worker): a SQLite file's WAL
    checkpoints run in a thread of their own and commits on the event loop's thread
    (:mod:`tryon_core.db.checkpoints`); otherwise a commit may checkpoint, on aiosqlite's thread.

    PostgreSQL keeps ``pool_size`` connections for reuse; a burst past them opens as many
    again, closed when it is over. A sync request runs two write transactions, each briefly
    (never across an upstream call), on connections kept between them (a quarter of the pool,
    see :mod:`tryon_core.db.kept`), so a pool this size rarely opens one anew."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        on_disk = bool(database) and database != ":memory:" and not database.startswith("file:")
        if on_disk:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine_options.setdefault("pool_reset_on_return", None)  # see _tune_sqlite's reset
        # the connection returned last goes out first: its page cache is the likeliest to be
        # valid still (a commit by another connection empties it); first-in-first-out
        # rotated through them all, each reading the pages again (66 reads per try-on -> 34)
        engine_options.setdefault("pool_use_lifo", True)
        engine = create_async_engine(
            parsed,
            connect_args={"timeout": 30, "check_same_thread": False},  # see db/prepared.py
            pool_pre_ping=False,
            **engine_options,
        )
        checkpointer = Checkpointer(database) if own_checkpoints and on_disk else None
        _tune_sqlite(engine, checkpointer=checkpointer)
        return Database(engine, checkpointer)
    engine_options.setdefault("pool_size", pool_size)
    engine_options.setdefault("max_overflow", pool_size)
    engine_options.setdefault("pool_timeout", timeout)
    engine_options.setdefault("connect_args", {"timeout": timeout, "command_timeout": timeout})
    engine = create_async_engine(parsed, **engine_options)
    if not engine_options.get("pool_pre_ping"):
        _ping_at_checkout(engine)
    defer_writes(engine)
    return Database(engine, keep=max(1, engine_options["pool_size"] // 4))


_AT_CHECKOUT: contextvars.ContextVar[str] = contextvars.ContextVar(
    "tryon_at_checkout", default="ping"
)
"""What checking a PostgreSQL connection out does (see :meth:`Database._connection`)."""


def _ping_at_checkout(engine: AsyncEngine) -> None:
    """Check each pooled PostgreSQL connection before handing it out, in one round trip: a
    server restarted or a connection cut meanwhile costs a fresh connection, not a failed
    request. (SQLAlchemy's ``pool_pre_ping`` does the same in a transaction of its own: three
    round trips on asyncpg, and a sync request checks out three times.) A dead connection is
    discarded and the pool tries another (SQLAlchemy's ``DisconnectionError`` protocol).

    A connection checked out for a write transaction is checked by beginning it: BEGIN goes to
    the server at once instead of with the first statement, and costs the ping's round trip
    (SQLAlchemy's asyncpg adapter then finds its transaction begun). One checked out for
    :meth:`Database.read` is not checked: its own first statement does that."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        try:
            check = _AT_CHECKOUT.get()
            if check == "begin":
                await_(dbapi_connection._start_transaction())
            elif check == "ping":
                await_(dbapi_connection.driver_connection.execute("SELECT 1"))
        except Exception as error:  # gone: the pool discards it and connects anew
            raise DisconnectionError(f"a pooled connection failed its ping: {error}") from error


_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another process's write lock before a 503."""
_STATEMENT_BUSY_MS = 250
"""How long any other statement may wait inside SQLite for a lock (rare in WAL mode).

SQLite waits for a lock (its busy handler) holding the connection's own mutex, and whatever
else touches that connection meanwhile waits too: freeing one of its cursors or statements,
which the garbage collector does on whatever thread it runs on, the event loop's included.
A writer that waited there for another process's lock (30 s, as it once did on aiosqlite's
thread) could so freeze the event loop until it gave up, and with it the process holding the
lock, whose COMMIT runs on that loop: every write of both stalled for the whole timeout.
So a writer waits for the lock on the event loop instead (:func:`_begin_when_free`), and a
statement's own wait inside SQLite stays short."""
_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.025
"""Seconds between two tries at another process's write lock: doubling from the first to
the longest (SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms... between its tries)."""


def _tune_sqlite(engine: AsyncEngine, *, checkpointer: Checkpointer | None = None) -> None:
    """WAL for concurrent readers; BEGIN IMMEDIATE so writers queue instead of deadlocking.
    With a ``checkpointer`` (started with the first connection): no automatic checkpoints, so a
    COMMIT only appends to the WAL and runs on the event loop's thread."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _into_wal(cursor)
        cursor.execute(f"PRAGMA busy_timeout={_STATEMENT_BUSY_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if checkpointer is not None:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
            checkpointer.start()
        cursor.close()

    if checkpointer is not None:
        # SQLAlchemy commits through the dialect: here, on the driver's sqlite3 connection
        # itself, on this thread (only the task holding the connection uses it). With
        # synchronous=NORMAL and no automatic checkpoint, a WAL commit does not touch the disk.
        def _commit(dbapi_connection: Any) -> None:
            try:
                dbapi_connection.driver_connection._conn.commit()
            except sqlite3.Error as error:  # as SQLAlchemy raises it
                raise DBAPIError.instance("COMMIT", (), error, sqlite3.Error) from error

        engine.sync_engine.dialect.do_commit = _commit  # type: ignore[method-assign]

    @event.listens_for(engine.sync_engine, "reset")
    def _reset(dbapi_connection: Any, _record: Any, _state: Any) -> None:
        # A connection back in the pool is rolled back only if a transaction is open: the
        # usual no-op ROLLBACK would cost a hop to aiosqlite's thread and back.
        if dbapi_connection.driver_connection._conn.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        # On the driver itself, none of SQLAlchemy's execution around it, on the event loop's
        # thread, never waiting there: a deferred BEGIN never does, and a writer's BEGIN
        # IMMEDIATE is tried without waiting (this process's writers queue on the writer lock
        # already). A lock held by another process is waited for on the event loop, between
        # tries (see _STATEMENT_BUSY_MS: never inside SQLite).
        read_only = conn.get_execution_options().get("tryon_read_only", False)
        driver = conn.connection.driver_connection
        assert driver is not None
        if driver._conn.in_transaction:  # begun on the driver already (_SqliteSteps)
            return
        statement = "BEGIN" if read_only else "BEGIN IMMEDIATE"
        try:
            if read_only:
                driver._conn.execute(statement)
                return
            if not _begun_at_once(driver._conn):
                await_(_begin_when_free(driver._conn))
        except sqlite3.Error as error:  # as SQLAlchemy raises it (a held lock: OperationalError)
            raise DBAPIError.instance(statement, (), error, sqlite3.Error) from error


class _SqliteSteps:
    """A kept SQLite connection's BEGIN IMMEDIATE and COMMIT (:mod:`tryon_core.db.kept`): on
    the driver, on the event loop's thread, with no task or greenlet of their own when neither
    can wait (nothing then can cut them in half): the write lock free at once, and the COMMIT
    of a process whose checkpoints run apart (``commits_inline``, see :func:`_tune_sqlite`).
    Otherwise as SQLAlchemy runs them, to their end."""

    def __init__(self, *, commits_inline: bool) -> None:
        self._commits_inline = commits_inline

    async def begin(self, conn: AsyncConnection) -> bool:
        sync = conn.sync_connection
        assert sync is not None
        driver: Any = sync.connection.driver_connection
        if _begun_at_once(driver._conn):
            sync.begin()  # SQLAlchemy's side: its "begin" listener finds it begun
        else:  # another process holds the lock: waited for on the event loop (_begin_when_free)
            await uninterrupted(greenlet_spawn(sync.begin))
        return True

    async def commit(self, conn: AsyncConnection) -> None:
        sync = conn.sync_connection
        assert sync is not None
        if self._commits_inline:
            sync.commit()
        else:
            await uninterrupted(greenlet_spawn(sync.commit))


def _into_wal(cursor: Any) -> None:
    """WAL mode, once per database file. Turning a new file to WAL takes its exclusive lock,
    and SQLite answers "database is locked" at once, without its busy handler, to the others
    who try meanwhile (several processes starting on a new file: ``tryon serve --workers`` and
    ``tryon worker``): they wait for it here, within the busy timeout."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        await_(asyncio.sleep(0.01))


def _begun_at_once(sqlite: sqlite3.Connection) -> bool:
    """``BEGIN IMMEDIATE`` now, or False (nothing begun) if another connection holds the lock."""
    sqlite.execute("PRAGMA busy_timeout=0")
    try:
        sqlite.execute("BEGIN IMMEDIATE")
        return True
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
            raise
        return False
    finally:
        sqlite.execute(f"PRAGMA busy_timeout={_STATEMENT_BUSY_MS}")


async def _begin_when_free(sqlite: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE`` once another process lets the write lock go, tried again and again
    on the event loop for up to :data:`_BUSY_TIMEOUT_MS`, then SQLite's "database is locked"."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _BUSY_TIMEOUT_MS / 1000
    pause = _FIRST_PAUSE
    while True:
        await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
        if _begun_at_once(sqlite):
            return
        if loop.time() >= deadline:
            locked = sqlite3.OperationalError("database is locked")  # as SQLite's busy handler
            locked.sqlite_errorcode, locked.sqlite_errorname = sqlite3.SQLITE_BUSY, "SQLITE_BUSY"
            raise locked
        pause = min(pause * 2, _LONGEST_PAUSE)


def _upgrade(connection: Connection) -> None:
    from alembic import command  # only when migrating: alembic and mako weigh ~11 MB
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
