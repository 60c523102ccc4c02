"""Count what a database does: statements by kind, transactions begun and committed, and
connections opened. For benchmarks and for tests that keep the hot path's round trips from
creeping back up (counts are deterministic; timings are not).

    with count_statements(database.engine) as counts:
        ...  # requests
    counts.per(requests)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tryon_core.db.prepared import first_words

__all__ = ["StatementCounts", "count_statements"]

_PRAGMAS = ("PRAGMA",)


class StatementCounts(Counter[str]):
    """``select``, ``insert``, ``update``, ``delete``, ``other``: statements by their first
    word (a statement that carries deferred writes counts each of them too, see
    :meth:`tryon_core.db.prepared.Prepared.defer`); ``trips``: what was sent to the database
    (a statement and its deferred writes are one); ``begin``, ``commit``, ``rollback``:
    transactions; ``connect``: new connections."""

    @property
    def statements(self) -> int:
        return sum(self[kind] for kind in ("select", "insert", "update", "delete", "other"))

    def per(self, requests: int) -> dict[str, float]:
        """Every count divided by ``requests``."""
        return {kind: self[kind] / requests for kind in _KINDS if self[kind]}


_KINDS = (
    "select",
    "insert",
    "update",
    "delete",
    "other",
    "trips",
    "begin",
    "commit",
    "rollback",
    "connect",
)


def _kinds(statement: str) -> list[str | None]:
    """The kinds of ``statement``, and of each write deferred into it."""
    return [_kind(word) for word in first_words(statement.lstrip()) or [""]]


def _kind(statement: str) -> str | None:
    word = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    if word in ("SELECT", "INSERT", "UPDATE", "DELETE"):
        return word.lower()
    if word == "WITH":  # a CTE: count it by what it ends in
        return "select"
    if word in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE") or word in _PRAGMAS:
        return None  # counted as transactions below, or connection set-up
    return "other"


@contextmanager
def count_statements(
    engine: AsyncEngine, *, only: Callable[[], bool] | None = None
) -> Iterator[StatementCounts]:
    """Count everything ``engine`` runs while the block runs (every event loop, every task).

    ``only``: count only where it returns True, asked in the context of the task that runs
    the statement (e.g. a request's, leaving out background tasks: see ``request_context``).
    """
    counts = StatementCounts()
    sync = engine.sync_engine

    def add(kind: str | None) -> None:
        if kind is not None and (only is None or only()):
            counts[kind] += 1

    def executed(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        kinds = _kinds(statement)
        for kind in kinds:
            add(kind)
        if any(kinds):
            add("trips")

    def began(conn: Any) -> None:
        add("begin")

    def committed(conn: Any) -> None:
        add("commit")

    def rolled_back(conn: Any) -> None:
        add("rollback")

    def connected(dbapi_connection: Any, record: Any) -> None:
        add("connect")

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", executed),
        ("begin", began),
        ("commit", committed),
        ("rollback", rolled_back),
    ]
    for name, listener in listeners:
        event.listen(sync, name, listener)
    event.listen(sync.pool, "connect", connected)
    try:
        yield counts
    finally:
        for name, listener in listeners:
            event.remove(sync, name, listener)
        event.remove(sync.pool, "connect", connected)
