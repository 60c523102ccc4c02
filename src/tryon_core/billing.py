"""Credits: grants, reservations and their settlement, each an atomic ledger transaction.

Every function takes an open connection inside a transaction; the caller commits. A
reservation is one conditional UPDATE, so concurrent requests can never take a balance below
zero. Settlement flips ``generations.settled`` with a conditional UPDATE first, so a generation
is captured and released exactly once, whoever settles it.

Ledger rows: ``amount`` is the change to the spendable balance and ``reserved_delta`` the change
to the held amount. grant (+N, 0), reserve (-N, +N), capture (0, -C), release (+R, -R).
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.db.schema import accounts, generations, ledger
from tryon_core.errors import InvalidRequest, NotFound, PaymentRequired, echo
from tryon_core.ids import utcnow

__all__ = ["LedgerTotals", "check_affordable", "grant", "ledger_totals", "reserve", "settle"]


async def grant(conn: AsyncConnection, account_id: str, credits: int, *, note: str = "") -> int:
    """Add credits (a negative grant takes back unspent credits). Returns the new balance."""
    if credits == 0:
        raise InvalidRequest("A grant of zero credits changes nothing.", param="credits")
    result = await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id, accounts.c.balance + credits >= 0)
        .values(balance=accounts.c.balance + credits)
        .returning(accounts.c.balance)
    )
    balance = result.scalar_one_or_none()
    if balance is None:
        exists = await conn.scalar(select(accounts.c.id).where(accounts.c.id == account_id))
        if exists is None:
            raise NotFound(f"No account {echo(account_id)!r}.", param="account_id")
        raise InvalidRequest("The balance cannot go below zero.", param="credits")
    await _write(conn, account_id, "grant", credits, 0, None, note)
    return int(balance)


async def reserve(conn: AsyncConnection, account_id: str, credits: int, generation_id: str) -> None:
    """Hold ``credits`` for a generation, or raise 402 and change nothing."""
    if credits <= 0:
        return
    result = await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id, accounts.c.balance >= credits)
        .values(balance=accounts.c.balance - credits, reserved=accounts.c.reserved + credits)
    )
    if result.rowcount != 1:
        balance = await conn.scalar(select(accounts.c.balance).where(accounts.c.id == account_id))
        raise PaymentRequired(
            f"Insufficient credits: this request needs {credits}, the balance is {balance or 0}.",
            metadata={"required": credits, "balance": int(balance or 0)},
        )
    await _write(conn, account_id, "reserve", -credits, credits, generation_id, "")
    await conn.execute(
        update(generations)
        .where(generations.c.id == generation_id)
        .values(credits_reserved=generations.c.credits_reserved + credits)
    )


async def settle(conn: AsyncConnection, generation_id: str, charge: int) -> bool:
    """Capture ``charge`` of the generation's reservation and release the rest, exactly once.

    Returns False (and changes nothing) if the generation was already settled.
    """
    row = (
        await conn.execute(
            update(generations)
            .where(generations.c.id == generation_id, generations.c.settled.is_(False))
            .values(settled=True, credits_charged=charge, updated_at=utcnow())
            .returning(generations.c.account_id, generations.c.credits_reserved)
        )
    ).first()
    if row is None:
        return False
    account_id, held = row.account_id, int(row.credits_reserved)
    if not 0 <= charge <= held:
        raise ValueError(f"cannot charge {charge} against a reservation of {held}")
    released = held - charge
    if held:
        await conn.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(balance=accounts.c.balance + released, reserved=accounts.c.reserved - held)
        )
    if charge:
        await _write(conn, account_id, "capture", 0, -charge, generation_id, "")
    if released:
        await _write(conn, account_id, "release", released, -released, generation_id, "")
    return True


class LedgerTotals(NamedTuple):
    balance: int
    reserved: int


async def ledger_totals(conn: AsyncConnection, account_id: str) -> LedgerTotals:
    """The balance and reservation as the ledger alone says they are."""
    row = (
        await conn.execute(
            select(
                func.coalesce(func.sum(ledger.c.amount), 0),
                func.coalesce(func.sum(ledger.c.reserved_delta), 0),
            ).where(ledger.c.account_id == account_id)
        )
    ).one()
    return LedgerTotals(int(row[0]), int(row[1]))


async def _write(
    conn: AsyncConnection,
    account_id: str,
    kind: str,
    amount: int,
    reserved_delta: int,
    generation_id: str | None,
    note: str,
) -> None:
    await conn.execute(
        insert(ledger).values(
            account_id=account_id,
            kind=kind,
            amount=amount,
            reserved_delta=reserved_delta,
            generation_id=generation_id,
            note=note,
            created_at=utcnow(),
        )
    )


async def check_affordable(conn: AsyncConnection, account_id: str, credits: int) -> None:
    """Raise 402 if the spendable balance is below ``credits`` now: a cheap early refusal,
    before a request's images are fetched or decoded. :func:`reserve` still decides."""
    if credits <= 0:
        return
    balance = await conn.scalar(select(accounts.c.balance).where(accounts.c.id == account_id))
    if int(balance or 0) < credits:
        raise PaymentRequired(
            f"Insufficient credits: this request needs at least {credits}, the balance is "
            f"{int(balance or 0)}.",
            metadata={"required": credits, "balance": int(balance or 0)},
        )
