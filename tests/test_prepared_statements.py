"""The hot path's prepared statements (``tryon_core.db.prepared``) behave as SQLAlchemy's own
execution does, on both databases: inside the caller's transaction (committed or rolled back
with it), with the columns' type conversions both ways, SQLAlchemy's exceptions, and every
statement seen by the engine's cursor listeners (what statement counting and tracing use)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from tests.helpers import account_row
from tryon_core.db.engine import Database, create_database
from tryon_core.db.prepared import Prepared, insert_row, update_row
from tryon_core.db.schema import accounts, api_keys, ledger
from tryon_core.testing.statements import count_statements

MADE = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
_ACCOUNT = Prepared(
    select(accounts.c.balance, accounts.c.created_at, accounts.c.operator).where(
        accounts.c.id == bindparam("id")
    )
)


def _account(account_id: str, balance: int = 5) -> dict[str, object]:
    return account_row(account_id, balance=balance, operator=True, created=MADE)


async def test_rows_commit_and_convert_both_ways(database: Database) -> None:
    async with database.transaction() as conn:
        ran = await insert_row(conn, accounts, _account("acc_a"), returning=("id", "balance"))
        assert (ran.rowcount, ran.rows[0].id, ran.rows[0].balance) == (1, "acc_a", 5)
    async with database.reading() as conn:
        row = await _ACCOUNT.first(conn, id="acc_a")
        missing = await _ACCOUNT.first(conn, id="acc_none")
    assert row is not None and missing is None
    assert row.balance == 5 and bool(row.operator) is True
    made = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    assert made == MADE


async def test_a_rolled_back_transaction_keeps_nothing(database: Database) -> None:
    async with database.transaction() as conn:
        await insert_row(conn, accounts, _account("acc_b"))
    with pytest.raises(RuntimeError):
        async with database.transaction() as conn:
            ran = await update_row(conn, accounts, "id", "acc_b", {"balance": 99})
            assert ran.rowcount == 1
            raise RuntimeError("abandon")
    async with database.reading() as conn:
        assert await _ACCOUNT.scalar(conn, id="acc_b") == 5
        none = await update_row(conn, accounts, "id", "acc_nobody", {"balance": 1})
    assert none.rowcount == 0


async def test_a_constraint_breach_is_sqlalchemys_integrity_error(database: Database) -> None:
    async with database.transaction() as conn:
        await insert_row(conn, accounts, _account("acc_c"))
    with pytest.raises(IntegrityError):
        async with database.transaction() as conn:
            await insert_row(conn, accounts, _account("acc_c"))
    with pytest.raises(IntegrityError):  # a key of no account: the foreign key holds
        async with database.transaction() as conn:
            key = {
                "id": "key_x",
                "account_id": "acc_nobody",
                "name": "",
                "prefix": "p",
                "hash": "h" * 64,
                "created_at": MADE,
                "scope": "inference",
                "limit_reset": "none",
                "limit_used": 0,
                "active_generations": 0,
            }
            await insert_row(conn, api_keys, key)


async def test_listeners_see_every_statement(database: Database) -> None:
    with count_statements(database.engine) as counts:
        async with database.transaction() as conn:
            await insert_row(conn, accounts, _account("acc_d"))
            later = {"created_at": MADE + timedelta(days=1)}
            await update_row(conn, accounts, "id", "acc_d", later)
            await _ACCOUNT.first(conn, id="acc_d")
    assert (counts["insert"], counts["update"], counts["select"]) == (1, 1, 1)
    assert (counts["begin"], counts["commit"]) == (1, 1)


async def test_a_statement_leaning_on_python_defaults_is_refused(database: Database) -> None:
    partial = Prepared(insert(ledger).values(account_id=bindparam("a")))  # note: default ""
    with pytest.raises(ValueError, match="note"):
        async with database.transaction() as conn:
            await partial.run(conn, a="acc_e")


async def test_a_writer_waits_for_another_processs_lock_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    """SQLite: ``BEGIN IMMEDIATE`` is tried at once on the event loop; while another process
    (here another connection) holds the write lock, the writer tries again between pauses,
    the event loop free meanwhile, and goes on when the lock is let go."""
    path = tmp_path / "locked.db"
    database = create_database(f"sqlite+aiosqlite:///{path}")
    await database.upgrade()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    asyncio.get_running_loop().call_later(0.5, other.rollback)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.ensure_future(tick())
    try:
        async with database.transaction() as conn:
            assert ticks >= 3  # the loop ran while the writer waited
            await insert_row(conn, accounts, _account("acc_f"))
        async with database.reading() as conn:
            assert await _ACCOUNT.scalar(conn, id="acc_f") == 5
    finally:
        ticker.cancel()
        other.close()
        await database.dispose()
