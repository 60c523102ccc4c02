"""Credits: grants, reservations and their settlement, each an atomic ledger transaction.

Every function takes an open connection inside a transaction; the caller commits. A
reservation is one conditional UPDATE, so concurrent requests can never take a balance below
zero. Settlement flips ``generations.settled`` with a conditional UPDATE first, so a generation
is captured and released exactly once, whoever settles it.

Ledger rows: ``amount`` is the change to the spendable balance and ``reserved_delta`` the change
to the held amount. grant (+N, 0), reserve (-N, +N), capture (0, -C), release (+R, -R).

A key's credit limit and the active generations of a key and an account are counted in the
same transaction (:mod:`tryon_core.key_limits`).

A generation a demo session opened is also counted against the session's ``max_credits``:
the reservation raises the session's ``reserved`` in the same transaction, by a conditional
UPDATE that refuses to pass the cap (so concurrent requests cannot overshoot it); settlement
moves the captured part to ``spent`` and gives the released part back. Accounts are always
updated before demo sessions, so two transactions never wait on each other in a cycle.

Every amount is bounded by :data:`MAX_CREDITS`, and so is what an account holds
(``balance + reserved``): a grant that would pass it is refused, and reservations and
settlements only move credits within an account or take them out. So no column and no sum of a
few columns can leave a signed 64-bit integer, on either database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, NamedTuple, NoReturn

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import Executable

from tryon_core import demo_sessions as demo_sessions_
from tryon_core import key_limits, metrics
from tryon_core.accounts import Seen
from tryon_core.amounts import MAX_CREDITS, is_credits
from tryon_core.db.prepared import defer_insert, prepared_by
from tryon_core.db.schema import accounts, demo_sessions, generations, ledger
from tryon_core.errors import AuthenticationFailed, InvalidRequest, NotFound, PaymentRequired, echo
from tryon_core.ids import as_utc, utcnow
from tryon_core.key_limits import MostActive

NO_LIMITS = MostActive()

__all__ = [
    "MAX_CREDITS",
    "LedgerTotals",
    "check_affordable",
    "demo_credits_left",
    "grant",
    "ledger_totals",
    "refuse_unaffordable",
    "reserve",
    "settle",
]


async def grant(conn: AsyncConnection, account_id: str, credits: int, *, note: str = "") -> int:
    """Add credits (a negative grant takes back unspent credits). Returns the new balance.

    Refused, with nothing changed: zero, more than :data:`MAX_CREDITS` either way, a balance
    that would go below zero, or an account that would hold more than :data:`MAX_CREDITS`.
    """
    if credits == 0:
        raise InvalidRequest("A grant of zero credits changes nothing.", param="credits")
    if type(credits) is not int or not is_credits(abs(credits)):
        raise InvalidRequest(
            f"A grant is a whole number of credits from -{MAX_CREDITS} to {MAX_CREDITS}.",
            param="credits",
            metadata={"maximum": MAX_CREDITS},
        )
    holdings = accounts.c.balance + accounts.c.reserved + credits
    result = await conn.execute(
        update(accounts)
        .where(
            accounts.c.id == account_id,
            accounts.c.balance + credits >= 0,
            holdings <= MAX_CREDITS,
        )
        .values(balance=accounts.c.balance + credits)
        .returning(accounts.c.balance)
    )
    balance = result.scalar_one_or_none()
    if balance is None:
        await _refuse_grant(conn, account_id, credits)
    await _write(conn, account_id, "grant", credits, 0, None, note)
    return int(balance)


async def _refuse_grant(conn: AsyncConnection, account_id: str, credits: int) -> NoReturn:
    row = (
        await conn.execute(
            select(accounts.c.balance, accounts.c.reserved).where(accounts.c.id == account_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"No account {echo(account_id)!r}.", param="account_id")
    if row.balance + credits < 0:
        raise InvalidRequest("The balance cannot go below zero.", param="credits")
    raise InvalidRequest(
        f"An account holds at most {MAX_CREDITS} credits (balance and reserved together); "
        f"this grant would make it {row.balance + row.reserved + credits}.",
        param="credits",
        metadata={
            "maximum": MAX_CREDITS,
            "balance": int(row.balance),
            "reserved": int(row.reserved),
        },
    )


async def reserve(
    conn: AsyncConnection,
    account_id: str,
    credits: int,
    generation_id: str,
    *,
    demo_session_id: str | None = None,
    key_id: str | None = None,
    made: datetime | None = None,
    most_active: MostActive = NO_LIMITS,
    key_reset: str | None = None,
    recorded: bool = False,
) -> None:
    """Hold ``credits`` for a generation, or raise 402 (429) and change nothing (the caller's
    transaction is rolled back on the error).

    More than :data:`MAX_CREDITS` is a 402 without a statement: no account can hold that much.
    With ``demo_session_id``, the session's cap must cover it too (else 402
    ``demo_credit_limit``; 401 if the session ended meanwhile). With ``key_id``, the key's
    credit limit too, in the period holding ``made`` (when the generation was made; else 402
    ``key_limit_exceeded``). Every generation, free ones too, counts among the account's (and
    key's) active generations, at most ``most_active`` (else 429, see
    :mod:`tryon_core.key_limits`).

    ``key_reset``: the key's ``limit_reset`` as authentication read it (saves a read; see
    :func:`~tryon_core.key_limits.hold_for_key`). ``recorded``: the caller inserted the
    generation row in this transaction already holding ``credits_reserved`` and ``counted``
    (a refusal rolls it back with everything else), so it is not updated again.
    """
    if type(credits) is not int or credits < 0:
        raise ValueError(f"cannot reserve {credits!r} credits")
    most = most_active.account
    if credits > MAX_CREDITS:
        await _refuse_reservation(conn, account_id, credits, most)
    if credits:  # before the account's row: see before_hold in pipeline.open_generation
        await _write(conn, account_id, "reserve", -credits, credits, generation_id, "")
    held = await _HOLD(most is not None).run(
        conn, account_id=account_id, credits=credits, most=most
    )
    if held.rowcount != 1:
        await _refuse_reservation(conn, account_id, credits, most)
    if key_id is not None:
        await key_limits.hold_for_key(
            conn, key_id, credits, at=made or utcnow(), most=most_active.key, reset=key_reset
        )
    if demo_session_id is not None and credits:
        await _hold_within_cap(conn, demo_session_id, credits)
    if not recorded:
        await conn.execute(
            update(generations)
            .where(generations.c.id == generation_id)
            .values(credits_reserved=generations.c.credits_reserved + credits, counted=True)
        )


def _hold(most: bool) -> Executable:
    """Take ``credits`` from the balance into the reservation, if the balance covers them
    (and, with ``most``, the account runs fewer generations than that)."""
    conditions = [
        accounts.c.id == bindparam("account_id"),
        accounts.c.balance >= bindparam("credits"),
    ]
    if most:
        conditions.append(accounts.c.active_generations < bindparam("most"))
    return (
        update(accounts)
        .where(*conditions)
        .values(
            balance=accounts.c.balance - bindparam("credits"),
            reserved=accounts.c.reserved + bindparam("credits"),
            active_generations=accounts.c.active_generations + 1,
        )
    )


_HOLD = prepared_by(_hold)


async def _refuse_reservation(
    conn: AsyncConnection, account_id: str, credits: int, most: int | None
) -> NoReturn:
    row = (
        await conn.execute(
            select(accounts.c.balance, accounts.c.active_generations).where(
                accounts.c.id == account_id
            )
        )
    ).first()
    balance = 0 if row is None else int(row.balance)
    busy = row is not None and most is not None and row.active_generations >= most
    if busy and balance >= credits and most is not None:
        raise key_limits.too_many_active("account", most)
    raise PaymentRequired(
        f"Insufficient credits: this request needs {credits}, the balance is {balance}.",
        metadata={"required": credits, "balance": balance},
    )


async def settle(
    conn: AsyncConnection,
    generation_id: str,
    charge: int,
    *,
    model: str | None = None,
    finish: dict[str, Any] | None = None,
    before_balances: Callable[[AsyncConnection], Awaitable[None]] | None = None,
) -> bool:
    """Capture ``charge`` of the generation's reservation and release the rest, exactly once.

    Returns False (and changes nothing) if the generation was already settled. ``model``
    (the one that served, if any) labels the credits in the metrics. ``finish``: more columns
    of the generation row to set in the same UPDATE (its final status), only if it settles.
    ``before_balances``: more writes of a generation that settles (its files), made before
    the account's, key's and demo session's rows are updated. Those rows are shared by every
    request of theirs, so they come last: what follows them keeps the others waiting.
    """
    values = {"updated_at": utcnow(), **(finish or {})}
    mark = _MARK_SETTLED(tuple(sorted(values)))
    row = await mark.first(conn, generation_id=generation_id, charge=charge, **values)
    if row is None:
        return False
    account_id, held, counted = row.account_id, int(row.credits_reserved), bool(row.counted)
    if type(charge) is not int or not 0 <= charge <= held:
        raise ValueError(f"cannot charge {charge} against a reservation of {held}")
    released = held - charge
    if charge:
        await _write(conn, account_id, "capture", 0, -charge, generation_id, "")
    if released:
        await _write(conn, account_id, "release", released, -released, generation_id, "")
    if before_balances is not None:
        await before_balances(conn)
    if held or counted:
        await _UNHOLD(bool(held), counted).defer(
            conn, account_id=account_id, released=released, held=held
        )
    if counted and row.key_id is not None:
        await key_limits.release_for_key(conn, row.key_id, released, made=row.created_at)
    if held and row.demo_session_id is not None:
        await conn.execute(
            update(demo_sessions)
            .where(demo_sessions.c.id == row.demo_session_id)
            .values(reserved=demo_sessions.c.reserved - held, spent=demo_sessions.c.spent + charge)
        )
    metrics.credits_settled(model, charge, released)
    return True


def _mark_settled(columns: tuple[str, ...]) -> Executable:
    """Settle the generation (if nobody did), setting ``columns`` of its row too."""
    return (
        update(generations)
        .where(generations.c.id == bindparam("generation_id"), generations.c.settled.is_(False))
        .values({column: bindparam(column) for column in columns})
        .values(settled=True, credits_charged=bindparam("charge"))
        .returning(
            generations.c.account_id,
            generations.c.credits_reserved,
            generations.c.demo_session_id,
            generations.c.key_id,
            generations.c.counted,
            generations.c.created_at,
        )
    )


def _unhold(held: bool, counted: bool) -> Executable:
    """The account's side of a settlement: ``held`` credits out of the reservation, the
    ``released`` part of them back into the balance; one active generation fewer."""
    active = accounts.c.active_generations
    values: dict[str, Any] = {}
    if held:
        values.update(
            balance=accounts.c.balance + bindparam("released"),
            reserved=accounts.c.reserved - bindparam("held"),
        )
    if counted:
        values.update(active_generations=case((active > 0, active - 1), else_=0))
    return update(accounts).where(accounts.c.id == bindparam("account_id")).values(values)


_MARK_SETTLED = prepared_by(_mark_settled)
_UNHOLD = prepared_by(_unhold)


async def _hold_within_cap(conn: AsyncConnection, session_id: str, credits: int) -> None:
    """Count ``credits`` against a live demo session's cap, in one conditional UPDATE."""
    now = utcnow()
    used = demo_sessions.c.reserved + demo_sessions.c.spent
    result = await conn.execute(
        update(demo_sessions)
        .where(
            demo_sessions.c.id == session_id,
            used + credits <= demo_sessions.c.max_credits,
            demo_sessions.c.revoked_at.is_(None),
            demo_sessions.c.expires_at > now,
        )
        .values(reserved=demo_sessions.c.reserved + credits)
    )
    if result.rowcount != 1:
        await _refuse_beyond_cap(conn, session_id, credits)


async def _refuse_beyond_cap(conn: AsyncConnection, session_id: str, credits: int) -> NoReturn:
    row = (
        await conn.execute(select(demo_sessions).where(demo_sessions.c.id == session_id))
    ).first()
    if row is None or row.revoked_at is not None:
        raise AuthenticationFailed(demo_sessions_.REVOKED_MESSAGE, type="demo_session_revoked")
    if as_utc(row.expires_at) <= utcnow():
        raise AuthenticationFailed(demo_sessions_.EXPIRED_MESSAGE, type="demo_session_expired")
    left = max(0, int(row.max_credits) - int(row.reserved) - int(row.spent))
    raise PaymentRequired(
        f"This demo session may use {left} more credit(s) (of {row.max_credits}); this request "
        f"needs {credits}.",
        type="demo_credit_limit",
        metadata={"required": credits, "remaining": left, "max_credits": int(row.max_credits)},
    )


async def demo_credits_left(conn: AsyncConnection, session_id: str) -> int:
    """What a demo session may still reserve (0 once it is revoked or expired)."""
    row = (
        await conn.execute(select(demo_sessions).where(demo_sessions.c.id == session_id))
    ).first()
    if row is None or row.revoked_at is not None or as_utc(row.expires_at) <= utcnow():
        return 0
    return max(0, int(row.max_credits) - int(row.reserved) - int(row.spent))


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
    row = {
        "account_id": account_id,
        "kind": kind,
        "amount": amount,
        "reserved_delta": reserved_delta,
        "generation_id": generation_id,
        "note": note,
        "created_at": utcnow(),
    }
    await defer_insert(conn, ledger, row)


async def check_affordable(
    conn: AsyncConnection,
    account_id: str,
    credits: int,
    *,
    demo_session_id: str | None = None,
    key_id: str | None = None,
) -> None:
    """Raise 402 if the spendable balance (or the demo session's cap, or the key's credit
    limit) is below ``credits`` now: a cheap early refusal, before a request's images are
    fetched or decoded. :func:`reserve` still decides."""
    if credits <= 0:
        return
    if key_id is not None:
        await key_limits.refuse_early(conn, key_id, credits)
    if demo_session_id is not None:
        left = await demo_credits_left(conn, demo_session_id)
        if left < credits:
            await _refuse_beyond_cap(conn, demo_session_id, credits)
    balance = await conn.scalar(select(accounts.c.balance).where(accounts.c.id == account_id))
    _refuse_below(int(balance or 0), credits)


def refuse_unaffordable(seen: Seen, credits: int) -> None:
    """:func:`check_affordable` for an API key's caller, without a read: the balance and the
    key's limit as authentication read them (:class:`~tryon_core.accounts.Seen`)."""
    if credits <= 0:
        return
    key_limits.refuse_seen(seen, credits)
    _refuse_below(seen.balance, credits)


def _refuse_below(balance: int, credits: int) -> None:
    if balance < credits:
        raise PaymentRequired(
            f"Insufficient credits: this request needs at least {credits}, the balance is "
            f"{balance}.",
            metadata={"required": credits, "balance": balance},
        )
