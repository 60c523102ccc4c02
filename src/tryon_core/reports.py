"""Figures about accounts, for people reading them (the console): spend per day and per key,
and every account's balance. Reads only.

Spend is what was charged: a ledger ``capture`` row takes its credits out of the reservation
(``reserved_delta`` is minus the charge), so a day's spend is the captures settled that day,
in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.accounts import Account
from tryon_core.db.schema import accounts, generations, ledger
from tryon_core.ids import as_utc, utcnow

__all__ = ["DailySpend", "daily_spend", "list_accounts", "spend_by_key"]


class DailySpend(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    credits: int


async def daily_spend(
    conn: AsyncConnection, account_id: str, *, days: int, today: date | None = None
) -> list[DailySpend]:
    """Credits charged on each of the last ``days`` UTC days up to ``today``, oldest first,
    every day present (0 when nothing was charged)."""
    last = today or utcnow().date()
    first = last - timedelta(days=days - 1)
    day = _utc_day(conn, ledger.c.created_at)
    rows = await conn.execute(
        select(day, func.sum(-ledger.c.reserved_delta))
        .where(
            ledger.c.account_id == account_id,
            ledger.c.kind == "capture",
            ledger.c.created_at >= _midnight(first),
        )
        .group_by(day)
    )
    spent = {date.fromisoformat(str(when)[:10]): int(total or 0) for when, total in rows}
    return [
        DailySpend(day=first + timedelta(days=i), credits=spent.get(first + timedelta(days=i), 0))
        for i in range(days)
    ]


async def spend_by_key(conn: AsyncConnection, account_id: str) -> dict[str | None, int]:
    """Credits charged for the account's generations, by the key that opened them (None:
    the console, or a key-less principal)."""
    rows = await conn.execute(
        select(generations.c.key_id, func.sum(generations.c.credits_charged))
        .where(generations.c.account_id == account_id)
        .group_by(generations.c.key_id)
    )
    return {key_id: int(total or 0) for key_id, total in rows}


async def list_accounts(conn: AsyncConnection, *, limit: int = 500) -> list[Account]:
    """Accounts, oldest first, with their balances."""
    rows = await conn.execute(
        select(accounts).order_by(accounts.c.created_at, accounts.c.id).limit(limit)
    )
    return [
        Account(
            id=row.id,
            name=row.name,
            balance=int(row.balance),
            reserved=int(row.reserved),
            created_at=as_utc(row.created_at),
        )
        for row in rows
    ]


def _utc_day(conn: AsyncConnection, column: Any) -> Any:
    """The UTC calendar day of a timestamp column (SQLite keeps UTC text; PostgreSQL converts)."""
    if conn.dialect.name == "sqlite":
        return func.date(column)
    return func.date(func.timezone("UTC", column))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
