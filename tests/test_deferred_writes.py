"""Deferred writes (``Prepared.defer``): on PostgreSQL a write nobody reads back goes to the
server with the transaction's next statement, in one round trip; on SQLite it runs at once.
Either way the transaction ends as if each write had run where it was written: in order, each
seen by what follows it, committed or rolled back with the rest, its errors raised within it."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.helpers import account_row, eventually
from tryon_core.accounts import create_key
from tryon_core.db.engine import Database, create_database
from tryon_core.db.prepared import Prepared, defer_insert, insert_row
from tryon_core.db.schema import accounts, api_keys, ledger
from tryon_core.testing.statements import count_statements

MADE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
_BALANCE = Prepared(select(accounts.c.balance).where(accounts.c.id == bindparam("id")))
_ADD = Prepared(
    update(accounts)
    .where(accounts.c.id == bindparam("id"))
    .values(balance=accounts.c.balance + bindparam("amount"))
)
_LEDGER_ROWS = Prepared(
    select(ledger.c.amount).where(ledger.c.account_id == bindparam("id")).order_by(ledger.c.id)
)
_names = itertools.count()


def _account(account_id: str, balance: int = 0) -> dict[str, object]:
    return account_row(account_id, balance=balance, operator=False, created=MADE)


def _entry(account_id: str, amount: int) -> dict[str, object]:
    return {
        "account_id": account_id,
        "kind": "grant",
        "amount": amount,
        "reserved_delta": 0,
        "generation_id": None,
        "note": "",
        "created_at": MADE,
    }


async def _new_account(database: Database, balance: int = 0) -> str:
    account_id = f"acc_deferred_{next(_names)}"
    async with database.transaction() as conn:
        await insert_row(conn, accounts, _account(account_id, balance))
    return account_id


async def _state(database: Database, account_id: str) -> tuple[int, list[int]]:
    async with database.reading() as conn:
        balance = await _BALANCE.scalar(conn, id=account_id)
        entries = [row.amount for row in (await _LEDGER_ROWS.run(conn, id=account_id)).rows]
    return int(balance), entries


async def test_writes_go_with_the_next_statement_on_postgresql(database: Database) -> None:
    account_id = await _new_account(database)
    with count_statements(database.engine) as counts:
        async with database.transaction() as conn:
            await defer_insert(conn, ledger, _entry(account_id, 3))
            await _ADD.run(conn, id=account_id, amount=3)  # the ledger row goes with it
            await defer_insert(conn, ledger, _entry(account_id, 4))
            await _ADD.defer(conn, id=account_id, amount=4)  # a table apart: they go at COMMIT
    assert counts["insert"] == 2 and counts["update"] == 2  # every write ran...
    assert counts["trips"] == (4 if database.is_sqlite else 2)  # ...in fewer round trips
    assert await _state(database, account_id) == (7, [3, 4])


_ADD_KEY_USE = Prepared(
    update(api_keys)
    .where(api_keys.c.id == bindparam("key_id"))
    .values(limit_used=api_keys.c.limit_used + 1)
)
_KEY_USE = Prepared(select(api_keys.c.limit_used).where(api_keys.c.id == bindparam("key_id")))


async def _new_key(database: Database, account_id: str) -> str:
    async with database.transaction() as conn:
        info, _ = await create_key(conn, account_id=account_id, name="deferred")
    return info.id


async def test_writes_that_lock_rows_go_together_in_the_order_written(database: Database) -> None:
    account_id = await _new_account(database)
    key_id = await _new_key(database, account_id)
    with count_statements(database.engine) as counts:
        async with database.transaction() as conn:
            await defer_insert(conn, ledger, _entry(account_id, 1))
            await _ADD.defer(conn, id=account_id, amount=1)  # locks the account's row
            await _ADD_KEY_USE.defer(conn, key_id=key_id)  # locks the key's: chained after it
            await _ADD.defer(conn, id=account_id, amount=2)  # the account again: on its own
    assert counts["update"] == 3
    assert counts["trips"] == (4 if database.is_sqlite else 2)
    assert await _state(database, account_id) == (3, [1])
    async with database.reading() as conn:
        assert await _KEY_USE.scalar(conn, key_id=key_id) == 1


@pytest.mark.postgres
async def test_a_statement_locks_rows_in_the_order_the_code_wrote_them(
    postgres_database_url: str,
) -> None:
    """The parts of one statement run in no set order, but two of them that lock rows are
    chained: the account's row, written first, is locked before the statement waits for the
    key's. (In the other order, a transaction holding the key and waiting for the account,
    beside one holding the account and waiting for the key, is a deadlock.)"""
    database = create_database(postgres_database_url)
    await database.upgrade()
    try:
        account_id = await _new_account(database)
        key_id = await _new_key(database, account_id)
        key_held, let_go = asyncio.Event(), asyncio.Event()

        async def hold_the_key() -> None:
            async with database.transaction() as conn:
                await conn.execute(
                    select(api_keys.c.id).where(api_keys.c.id == key_id).with_for_update()
                )
                key_held.set()
                await let_go.wait()

        async def write_both() -> None:
            async with database.transaction() as conn:
                await _ADD.defer(conn, id=account_id, amount=1)
                await _ADD_KEY_USE.defer(conn, key_id=key_id)  # both go at the COMMIT

        holder = asyncio.create_task(hold_the_key())
        await key_held.wait()
        writer = asyncio.create_task(write_both())
        try:
            async with database.reading() as conn:
                waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                await eventually(lambda: conn.scalar(waiting))  # the writer, for the key
                with pytest.raises(DBAPIError, match="could not obtain lock"):
                    await conn.execute(
                        select(accounts.c.id)
                        .where(accounts.c.id == account_id)
                        .with_for_update(nowait=True)
                    )
        finally:
            let_go.set()
            await asyncio.gather(holder, writer)
        assert await _state(database, account_id) == (1, [])
    finally:
        await database.dispose()


async def test_the_next_statement_sees_what_was_deferred(database: Database) -> None:
    account_id = await _new_account(database, balance=10)
    async with database.transaction() as conn:
        await _ADD.defer(conn, id=account_id, amount=5)
        assert await _BALANCE.scalar(conn, id=account_id) == 15  # prepared, same table
        await _ADD.defer(conn, id=account_id, amount=1)
        await _ADD.defer(conn, id=account_id, amount=1)  # one row twice: never one statement
        seen = await conn.scalar(select(accounts.c.balance).where(accounts.c.id == account_id))
        assert seen == 17  # SQLAlchemy's own statement: what was deferred ran first
        await defer_insert(conn, ledger, _entry(account_id, 2))
        entries = (await conn.execute(select(ledger.c.amount))).scalars().all()
        assert 2 in entries
    assert await _state(database, account_id) == (17, [2])


async def test_a_write_that_cannot_wait_runs_after_what_waits(database: Database) -> None:
    """A statement with a WITH of its own cannot take deferred writes along: deferred too, it
    runs at once, after them."""
    account_id = await _new_account(database, balance=10)
    target = select(accounts.c.id).where(accounts.c.id == bindparam("id")).cte("target")
    double = Prepared(
        update(accounts)
        .where(accounts.c.id.in_(select(target.c.id)))
        .values(balance=accounts.c.balance * 2)
    )
    async with database.transaction() as conn:
        await _ADD.defer(conn, id=account_id, amount=5)
        await double.defer(conn, id=account_id)
    assert await _state(database, account_id) == (30, [])  # (10 + 5) * 2, in order


async def test_a_rollback_drops_what_was_deferred(database: Database) -> None:
    account_id = await _new_account(database, balance=10)
    with pytest.raises(RuntimeError):
        async with database.transaction() as conn:
            await defer_insert(conn, ledger, _entry(account_id, 5))
            await _ADD.defer(conn, id=account_id, amount=5)
            raise RuntimeError("the caller gives up")
    async with database.transaction() as conn:  # the same pooled connection, nothing left over
        await _ADD.defer(conn, id=account_id, amount=1)
    assert await _state(database, account_id) == (11, [])


async def test_a_savepoint_rolled_back_drops_only_its_own(database: Database) -> None:
    account_id = await _new_account(database)
    async with database.transaction() as conn:
        await _ADD.defer(conn, id=account_id, amount=1)  # before the savepoint: kept
        nested = await conn.begin_nested()
        await _ADD.defer(conn, id=account_id, amount=10)
        await defer_insert(conn, ledger, _entry(account_id, 10))
        await nested.rollback()
        nested = await conn.begin_nested()
        await _ADD.defer(conn, id=account_id, amount=100)
        await nested.commit()  # released: kept
    assert await _state(database, account_id) == (101, [])


async def test_an_error_of_a_deferred_write_fails_its_transaction(database: Database) -> None:
    account_id = await _new_account(database, balance=10)
    with pytest.raises(IntegrityError):
        async with database.transaction() as conn:
            await _ADD.defer(conn, id=account_id, amount=5)
            await defer_insert(conn, ledger, _entry("acc_nobody", 5))  # no such account
            await _BALANCE.scalar(conn, id=account_id)  # on PostgreSQL, raised here
    with pytest.raises(IntegrityError):
        async with database.transaction() as conn:
            await _ADD.defer(conn, id=account_id, amount=5)
            await defer_insert(conn, ledger, _entry("acc_nobody", 5))  # raised at the COMMIT
    assert await _state(database, account_id) == (10, [])  # nothing of either was kept


async def test_outside_a_transaction_a_write_runs_at_once(database: Database) -> None:
    account_id = await _new_account(database, balance=1)
    async with database.reading() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await _ADD.defer(conn, id=account_id, amount=1)
    assert await _state(database, account_id) == (2, [])


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(-5, 5)),
        st.tuples(st.just("entry"), st.integers(-5, 5)),
        st.tuples(st.just("read"), st.just(0)),
        st.tuples(st.just("sqlalchemy read"), st.just(0)),
    ),
    max_size=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=_STEPS, commit=st.booleans())
async def test_deferring_changes_nothing_but_the_round_trips(
    database: Database, steps: list[tuple[str, int]], commit: bool
) -> None:
    """Any mix of deferred writes and reads ends as running each write at once would."""
    account_id = await _new_account(database, balance=100)  # never below zero (a CHECK)
    balance, entries = 100, []
    try:
        async with database.transaction() as conn:
            for step, amount in steps:
                if step == "add":
                    await _ADD.defer(conn, id=account_id, amount=amount)
                    balance += amount
                elif step == "entry":
                    await defer_insert(conn, ledger, _entry(account_id, amount))
                    entries.append(amount)
                elif step == "read":
                    assert await _BALANCE.scalar(conn, id=account_id) == balance
                    rows = (await _LEDGER_ROWS.run(conn, id=account_id)).rows
                    assert [row.amount for row in rows] == entries
                else:
                    query = select(accounts.c.balance).where(accounts.c.id == account_id)
                    assert await conn.scalar(query) == balance
            if not commit:
                raise LookupError("rolled back")
    except LookupError:
        balance, entries = 100, []
    assert await _state(database, account_id) == (balance, entries)
