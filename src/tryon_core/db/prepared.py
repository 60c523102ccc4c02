"""Statements of the hot path: built once, compiled once per dialect, run on the driver.

SQLAlchemy spends far more on one execution than the database does: building the statement,
its cache key, the execution context and result, and (aiosqlite) a second thread hop for the
cursor. Measured on this machine, one conditional UPDATE costs ~550 us of CPU that way on
SQLite (~330 us on PostgreSQL), ~95 us (~65 us) handed to the driver. A synchronous request runs
about a dozen of them.

:class:`Prepared` keeps what SQLAlchemy is good at, the statement written in Core against the
schema and compiled for the dialect in use, and skips the rest: the compiled text, the order of
its parameters and the type conversions (bind and result processors) are worked out once per
dialect, and each run hands the text and converted values to the driver's own connection
(aiosqlite, asyncpg) inside the caller's SQLAlchemy transaction. Errors come back as SQLAlchemy's
exceptions (``IntegrityError``, ``OperationalError``...), so callers handle them as before, and
the engine's ``before_cursor_execute`` / ``after_cursor_execute`` listeners still see every
statement (statement counting, tracing).

A prepared statement names every value it needs as a ``bindparam``; it may not rely on Python
side column defaults (refused when it is compiled), nor on expanding ``IN`` parameters.

**Deferred writes** (PostgreSQL): a write whose result nobody reads (an INSERT of a new row, an
UPDATE whose row count does not matter) may be handed over with :meth:`Prepared.defer` instead
of run. It goes to the server with the transaction's next statement, in one round trip, as a
data-modifying ``WITH`` of that statement (``WITH deferred_1 AS (INSERT ...) UPDATE ...``), or
just before the transaction commits, or before any other statement SQLAlchemy runs on the
connection. A ``WITH`` and its statement share one snapshot: none sees what another writes, and
one row written twice in it keeps one of the writes. So a deferred write never shares a
statement with another that names one of its tables: that one goes first, on its own. Rows
are locked in the order the code writes them, as two transactions that lock the same rows in
opposite orders wait for each other (PostgreSQL ends one with "deadlock detected"); but the
parts of a ``WITH`` run in no set order. So when several parts of one statement lock rows (an
UPDATE, a DELETE, a ``SELECT ... FOR UPDATE``), each after the first is *chained* to the one
written before it: it returns a row per row it wrote (``RETURNING 1``), and the next one's
``WHERE`` counts them (``(SELECT count(*) FROM deferred_1) >= 0``, always true), which makes
PostgreSQL run it to its end, locks and all, before the next looks at a row of its own. An error of
a deferred write (a constraint) surfaces at the statement it went with, in the same
transaction, which then rolls back: a caller that handles a write's own error runs it instead.
A rollback (to a savepoint too) drops what was deferred since. SQLite runs every write at once:
its statements cost no round trip (see ``_on_aiosqlite``).
"""

from __future__ import annotations

import functools
import re
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Delete,
    Select,
    Table,
    Update,
    bindparam,
    event,
    insert,
    literal_column,
    text,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import Executable
from sqlalchemy.sql.util import find_tables
from sqlalchemy.util import await_

from tryon_core.uninterrupted import uninterrupted

__all__ = [
    "Prepared",
    "Ran",
    "defer_insert",
    "defer_update",
    "defer_writes",
    "driver_error",
    "first_words",
    "insert_row",
    "prepared_by",
    "run_deferred",
    "update_row",
]

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class Ran:
    """What a run gave back: its rows (named tuples) and how many rows it touched."""

    rows: list[Any]
    rowcount: int

    def first(self) -> Any | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any | None:
        return self.rows[0][0] if self.rows else None


@dataclass(frozen=True, slots=True)
class _Form:
    """A statement as one dialect runs it."""

    sql: str
    params: tuple[tuple[str | None, Any, _Processor], ...]
    """Per driver position: the parameter's key (None: a constant), the constant, the
    conversion."""
    row: Any  # a namedtuple class, or None when the statement returns no rows
    results: tuple[_Processor, ...]
    postgres: bool
    reads: bool
    tables: frozenset[str]
    """Every table the statement names (it writes, reads or joins)."""
    deferrable: bool
    """PostgreSQL: a write that can go as a ``WITH`` of another statement."""
    locks: bool
    """It locks the rows it finds (an UPDATE, a DELETE, a SELECT ... FOR UPDATE)."""
    chains: _Chains | None = None
    """PostgreSQL, a statement that locks rows: its text chained after another's (see the
    module); None: it cannot be, and goes after the writes that lock on their own."""

    def values(self, given: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            _convert(constant if key is None else given[key], process)
            for key, constant, process in self.params
        )

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[Any]:
        make, results = self.row, self.results
        if not any(results):
            return [make(*values) for values in raw]
        return [make(*map(_convert, values, results)) for values in raw]


@dataclass(frozen=True, slots=True)
class _Chains:
    """A locking statement's texts for a place in a chain (see the module): ``after`` waits
    for the part named :data:`_PRIOR`; ``first`` and ``then`` are ``sql`` and ``after`` with a
    ``RETURNING`` that the next link counts."""

    after: str
    first: str
    then: str

    def text(self, prior: str | None, *, linked: bool) -> str:
        """As a part of a WITH (``linked``: another may follow it) or the statement itself,
        after the part ``prior`` (None: the first that locks)."""
        if prior is None:
            return self.first
        return (self.then if linked else self.after).replace(_PRIOR, prior)


def _convert(value: Any, process: _Processor) -> Any:
    return value if process is None or value is None else process(value)


class Prepared:
    """One Core statement, run without SQLAlchemy's per-execution work (see the module)."""

    __slots__ = ("_forms", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._forms: weakref.WeakKeyDictionary[Dialect, _Form] = weakref.WeakKeyDictionary()

    async def run(self, conn: AsyncConnection, **params: Any) -> Ran:
        sync = await _started(conn)
        form = self._form(sync.dialect)
        return await _run(sync, form, form.values(params))

    async def defer(self, conn: AsyncConnection, **params: Any) -> None:
        """Run this write with the transaction's next statement (PostgreSQL; see the module):
        for a write whose result nobody reads. SQLite, or outside a transaction: now."""
        sync = await _started(conn)
        form = self._form(sync.dialect)
        values = form.values(params)
        if not form.deferrable or not sync.in_transaction():
            await _run(sync, form, values)
            return
        batch = _BATCHES.get(sync)
        if batch is not None and batch.apart(form):
            await _flush(sync, _BATCHES.pop(sync))
            batch = None
        if batch is None:
            batch = _BATCHES[sync] = _Batch()
        batch.add(form, values)

    async def first(self, conn: AsyncConnection, **params: Any) -> Any | None:
        return (await self.run(conn, **params)).first()

    async def scalar(self, conn: AsyncConnection, **params: Any) -> Any | None:
        return (await self.run(conn, **params)).scalar()

    def _form(self, dialect: Dialect) -> _Form:
        form = self._forms.get(dialect)
        if form is None:
            form = self._forms[dialect] = _compile(self.statement, dialect)
        return form


async def _started(conn: AsyncConnection) -> Connection:
    sync = conn.sync_connection
    if sync is None:  # not started: the ordinary path starts it
        await conn.start()
        sync = conn.sync_connection
    assert sync is not None
    return sync


async def _run(sync: Connection, form: _Form, values: tuple[Any, ...]) -> Ran:
    """Run ``form`` now: with the writes deferred on ``sync`` if it can go with them, else after
    them."""
    batch = _BATCHES.pop(sync, None) if form.postgres else None
    if batch is None:
        return await _execute(sync, form, form.sql, values)
    if batch.apart(form) or not form.sql.startswith(_LEADS):
        await _flush(sync, batch)
        return await _execute(sync, form, form.sql, values)
    sql, joined = _with(batch.writes, form, values)
    return await _execute(sync, form, sql, joined)


async def _execute(sync: Connection, form: _Form, sql: str, values: tuple[Any, ...]) -> Ran:
    fairy = sync.connection
    context = _Context()
    sql = _before(sync, sql, values, context)
    try:
        if form.postgres:
            raw, rowcount = await _on_asyncpg(sync, fairy.dbapi_connection, form, sql, values)
        else:
            raw, rowcount = await _on_aiosqlite(sync, fairy.driver_connection, form, sql, values)
    except Exception as error:
        raise driver_error(sync, fairy.dbapi_connection, sql, values, error) from error
    finally:
        _after(sync, sql, values, context)
    return Ran(form.rows(raw) if form.row is not None else [], rowcount)


_LEADS = ("INSERT", "UPDATE", "DELETE", "SELECT")
"""How a statement that deferred writes can go with begins (not with a WITH of its own)."""
_PLACEHOLDER = re.compile(r"\$(\d+)")
_LOCKING_READ = re.compile(r"\bFOR (UPDATE|NO KEY UPDATE|SHARE|KEY SHARE)\b")


class _Batch:
    """The writes deferred on one connection, in order, the tables they name, and whether one
    of them locks rows and cannot be chained (see the module)."""

    __slots__ = ("tables", "unchained", "writes")

    def __init__(self) -> None:
        self.writes: list[tuple[_Form, tuple[Any, ...]]] = []
        self.tables: set[str] = set()
        self.unchained = False

    def add(self, form: _Form, values: tuple[Any, ...]) -> None:
        self.writes.append((form, values))
        self.tables |= form.tables
        self.unchained |= form.locks and form.chains is None

    def apart(self, form: _Form) -> bool:
        """``form`` cannot share a statement with these writes: it names one of their tables
        (one snapshot: it would not see them), or it locks rows after one of them that does and
        cannot be chained to it (see the module)."""
        return bool(self.tables & form.tables) or (
            form.locks and (form.chains is None or self.unchained)
        )


def _with(
    writes: Sequence[tuple[_Form, tuple[Any, ...]]], form: _Form, values: tuple[Any, ...]
) -> tuple[str, tuple[Any, ...]]:
    """The statement of ``form`` with ``writes`` as its ``WITH``, and every value in order;
    what locks rows chained in the order written (see the module)."""
    parts: list[str] = []
    joined: list[Any] = []
    prior: str | None = None
    for number, (write, given) in enumerate(writes, start=1):
        name = f"deferred_{number}"
        sql, prior = _linked(write, prior, name, linked=True)
        parts.append(f"{name} AS ({_renumbered(sql, len(joined))})")
        joined.extend(given)
    own, _ = _linked(form, prior, None, linked=False)
    combined = f"WITH {', '.join(parts)} {_THEN} {_renumbered(own, len(joined))}"
    return combined, (*joined, *values)


def _linked(
    form: _Form, prior: str | None, name: str | None, *, linked: bool
) -> tuple[str, str | None]:
    """``form``'s text after the locking part ``prior`` (if it locks rows), and the part the
    next one that locks comes after (``name``, if this one locks)."""
    if not form.locks or form.chains is None:
        return form.sql, prior
    return form.chains.text(prior, linked=linked), name


_THEN = "/* then */"
"""Between a statement's deferred writes and itself."""
_DEFERRED_WORD = re.compile(r"\bdeferred_\d+ AS \((\w+)")


def first_words(sql: str) -> list[str]:
    """The first word of each statement that ``sql`` runs: its deferred writes' (see
    :meth:`Prepared.defer`), then its own; for statement counters."""
    if sql.startswith("WITH deferred_") and _THEN in sql:
        writes, own = sql.split(_THEN, 1)
        return [*_DEFERRED_WORD.findall(writes), *own.split(None, 1)[:1]]
    return sql.split(None, 1)[:1]


@functools.lru_cache(maxsize=512)
def _renumbered(sql: str, offset: int) -> str:
    """``sql`` with its placeholders ``$n`` moved up by ``offset``."""
    if not offset:
        return sql
    return _PLACEHOLDER.sub(lambda found: f"${int(found.group(1)) + offset}", sql)


_BATCHES: weakref.WeakKeyDictionary[Connection, _Batch] = weakref.WeakKeyDictionary()


async def _flush(sync: Connection, batch: _Batch) -> None:
    """Run ``batch``'s writes now, in one statement: the last with the others as its WITH."""
    *first, (form, values) = batch.writes
    sql, values = _with(first, form, values) if first else (form.sql, values)
    await _execute(sync, form, sql, values)


async def run_deferred(sync: Connection) -> None:
    """Run what waits on ``sync`` now: before a COMMIT sent other than through SQLAlchemy."""
    batch = _BATCHES.pop(sync, None)
    if batch is not None:
        await _flush(sync, batch)


def defer_writes(engine: AsyncEngine) -> None:
    """Let :meth:`Prepared.defer` wait on ``engine``'s connections (PostgreSQL): what was
    deferred runs before any statement SQLAlchemy runs itself, before a COMMIT, a SAVEPOINT and
    its RELEASE; a ROLLBACK (to a savepoint too) drops it."""
    sync_engine = engine.sync_engine

    def flush(conn: Connection, *_: Any) -> None:
        batch = _BATCHES.pop(conn, None)
        if batch is not None:  # SQLAlchemy's own work runs in a greenlet: it can await
            await_(_flush(conn, batch))

    def drop(conn: Connection, *_: Any) -> None:
        _BATCHES.pop(conn, None)

    # before_execute: SQLAlchemy's own executions only (prepared statements go by
    # before_cursor_execute, and take what waits with them themselves)
    for name in ("before_execute", "commit", "savepoint", "release_savepoint"):
        event.listen(sync_engine, name, flush)
    for name in ("rollback", "rollback_savepoint"):
        event.listen(sync_engine, name, drop)


def _compile(statement: Executable, dialect: Dialect) -> _Form:
    compiled: Any = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    if compiled.insert_prefetch or compiled.update_prefetch:
        names = [c.name for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
        raise ValueError(f"a prepared statement must give every column: {names} left to defaults")
    if "POSTCOMPILE" in compiled.string:
        raise ValueError("a prepared statement cannot expand parameters (IN lists)")
    params = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if bind.required:
            params.append((bind.key, None, process))
        else:
            value = bind.effective_value
            params.append((None, value if process is None else process(value), None))
    columns = list(getattr(statement, "exported_columns", ()))
    returns = bool(columns) and (statement.is_select or bool(compiled.effective_returning))
    row = namedtuple("Row", [c.key for c in columns], rename=True) if returns else None
    results = (
        tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
        if returns
        else ()
    )
    postgres = dialect.name == "postgresql"
    sql = compiled.string
    locks = sql.startswith(("UPDATE", "DELETE")) or bool(_LOCKING_READ.search(sql))
    numbers = [int(found) for found in _PLACEHOLDER.findall(sql)]
    return _Form(
        sql=sql,
        params=tuple(params),
        row=row,
        results=results,
        postgres=postgres,
        reads=bool(statement.is_select),
        tables=frozenset(
            table.name
            for table in find_tables(
                compiled.statement, check_columns=True, include_crud=True, include_joins=True
            )
            if isinstance(table, Table)
        ),
        # each value once, as $1..$n, and nothing else that looks like one (a literal)
        deferrable=postgres
        and sql.startswith(("INSERT", "UPDATE", "DELETE"))
        and sorted(set(numbers)) == list(range(1, len(params) + 1)),
        locks=locks,
        chains=_chains(statement, dialect, sql, returns) if postgres and locks else None,
    )


_PRIOR = "tryon_prior_part"
"""Stands for the name of the part a chained statement comes after."""


def _chains(statement: Executable, dialect: Dialect, sql: str, returns: bool) -> _Chains | None:
    """A locking statement's texts in a chain (see the module), if it can have them: an
    UPDATE, a DELETE or a SELECT, its values the same in every text. ``returns``: it returns
    rows of its own already."""
    if not isinstance(statement, (Update, Delete, Select)):
        return None
    base: Any = statement
    after = base.where(text(f"(SELECT count(*) FROM {_PRIOR}) >= 0"))
    made = [after, base, after]
    if not returns:  # an UPDATE or a DELETE (a SELECT returns its columns)
        one: Any = literal_column("1")
        made[1:] = [base.returning(one), after.returning(one)]
    texts = [str(each.compile(dialect=dialect)) for each in made]
    if any(_PLACEHOLDER.findall(each) != _PLACEHOLDER.findall(sql) for each in texts):
        return None
    return _Chains(*texts)


async def _on_aiosqlite(
    sync: Connection, driver: Any, form: _Form, sql: str, values: tuple[Any, ...]
) -> tuple[Sequence[Sequence[Any]], int]:
    if _never_waits(sync, form):
        # Run on the event loop's own thread: a statement that cannot wait for a lock takes
        # microseconds, less than the hop to aiosqlite's thread and back (the connection is
        # opened with check_same_thread=False, and only the task holding it uses it).
        cursor = driver._conn.execute(sql, values)
        if form.row is None:
            return (), cursor.rowcount
        rows = cursor.fetchall()
    elif form.row is None:
        return (), (await driver.execute(sql, values)).rowcount
    else:
        rows = list(await driver.execute_fetchall(sql, values))
    return rows, len(rows)


def _never_waits(sync: Connection, form: _Form) -> bool:
    """SQLite, in WAL mode, makes nobody wait but writers at their ``BEGIN IMMEDIATE``:
    inside a write transaction (it holds the lock already) or for a read, nothing waits."""
    if form.reads:
        return True
    return sync.in_transaction() and not sync.get_execution_options().get("tryon_read_only")


async def _on_asyncpg(
    sync: Connection, adapter: Any, form: _Form, sql: str, values: tuple[Any, ...]
) -> tuple[Sequence[Sequence[Any]], int]:
    # SQLAlchemy's asyncpg adapter begins its transaction lazily, at the first statement it
    # runs itself: a transaction SQLAlchemy has begun must have begun on the server too.
    # Never cut in half by a cancellation: a BEGIN sent but not recorded would leave the
    # connection in a transaction nobody commits or rolls back (see tryon_core.uninterrupted).
    if sync.in_transaction() and adapter._transaction is None:
        await uninterrupted(adapter._start_transaction())
    driver = adapter._connection
    if form.row is not None:
        rows = await driver.fetch(sql, *values)
        return rows, len(rows)
    status = await driver.execute(sql, *values)
    count = status.rpartition(" ")[2]
    return (), int(count) if count.isdigit() else -1


class _Context:
    """The execution context the cursor events are given (a tracer may note its span here)."""


def _before(sync: Connection, sql: str, values: tuple[Any, ...], context: _Context) -> str:
    for listener in sync.dispatch.before_cursor_execute:
        sql, _ = listener(sync, None, sql, values, context, False)
    return sql


def _after(sync: Connection, sql: str, values: tuple[Any, ...], context: _Context) -> None:
    for listener in sync.dispatch.after_cursor_execute:
        listener(sync, None, sql, values, context, False)


def driver_error(
    sync: Connection, adapter: Any, sql: str, values: tuple[Any, ...], error: Exception
) -> BaseException:
    """The driver's ``error`` as SQLAlchemy raises it (``sqlalchemy.exc.IntegrityError``...)."""
    dbapi = sync.dialect.loaded_dbapi
    original: BaseException = error
    if not isinstance(error, dbapi.Error):
        try:  # asyncpg's errors: the adapter turns them into its DBAPI classes
            adapter._handle_exception(error)
        except Exception as adapted:
            original = adapted
    if not isinstance(original, dbapi.Error):
        return error
    disconnected = sync.dialect.is_disconnect(original, adapter, None)
    return DBAPIError.instance(
        sql, values, original, dbapi.Error, connection_invalidated=disconnected
    )


def prepared_by(build: Callable[..., Executable]) -> Callable[..., Prepared]:
    """``build``'s statement for each distinct set of (hashable) arguments, prepared once:
    for a statement with a few shapes (an optional condition, the columns a caller sets)."""
    return functools.cache(lambda *shape: Prepared(build(*shape)))


def _insert(table: Table, columns: tuple[str, ...], returning: tuple[str, ...]) -> Executable:
    statement = insert(table).values({name: bindparam(name) for name in columns})
    return statement.returning(*(table.c[name] for name in returning)) if returning else statement


def _update(table: Table, key: str, columns: tuple[str, ...]) -> Executable:
    return (
        update(table)
        .where(table.c[key] == bindparam(f"where_{key}"))
        .values({name: bindparam(name) for name in columns})
    )


_INSERTS = prepared_by(_insert)
_UPDATES = prepared_by(_update)


async def insert_row(
    conn: AsyncConnection,
    table: Table,
    values: Mapping[str, Any],
    *,
    returning: tuple[str, ...] = (),
) -> Ran:
    """Insert one row of ``values`` (every column it needs: no Python-side defaults)."""
    return await _INSERTS(table, tuple(sorted(values)), returning).run(conn, **values)


async def defer_insert(conn: AsyncConnection, table: Table, values: Mapping[str, Any]) -> None:
    """:func:`insert_row`, deferred (see :meth:`Prepared.defer`)."""
    await _INSERTS(table, tuple(sorted(values)), ()).defer(conn, **values)


async def update_row(
    conn: AsyncConnection, table: Table, key: str, value: Any, values: Mapping[str, Any]
) -> Ran:
    """Set ``values`` in the row(s) whose column ``key`` is ``value``."""
    shape = _UPDATES(table, key, tuple(sorted(values)))
    return await shape.run(conn, **{f"where_{key}": value}, **values)


async def defer_update(
    conn: AsyncConnection, table: Table, key: str, value: Any, values: Mapping[str, Any]
) -> None:
    """:func:`update_row`, deferred (see :meth:`Prepared.defer`)."""
    shape = _UPDATES(table, key, tuple(sorted(values)))
    await shape.defer(conn, **{f"where_{key}": value}, **values)
