"""A key's credit limit per period, and how many generations a key and an account run at once.

A key may have a credit limit (``api_keys.credit_limit``) that resets ``none`` (never),
``daily``, ``weekly`` (Monday 00:00) or ``monthly``, in UTC. ``limit_used`` holds what the key
reserved and was charged in the period that began at ``limit_period_start``. A reservation
counts against it in one conditional UPDATE of the key row that also rolls a stale period over
and refuses to pass the limit, so concurrent requests cannot overshoot it; settlement gives the
released part back, only if the generation was made in the key's current period. A key without
a limit counts nothing; setting one (or changing its reset) recounts the period from the
generations (:func:`recount`).

A generation is *active* from its reservation to its settlement (a queued or running job is
too). ``active_generations`` on the key and the account rise by one at reservation, with a
conditional UPDATE that refuses to pass the most allowed (:class:`MostActive`), and fall by one
at settlement, exactly once (``generations.counted`` says the reservation counted it). It lives
in the database, so it holds across every process, and every generation is settled in the end
(the sweeper settles what a dead process left), so no place is kept forever.

Accounts are updated before keys, and keys before demo sessions, at reservation and settlement
alike, so two transactions never wait on each other in a cycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, NoReturn

from sqlalchemy import BigInteger, and_, bindparam, case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import Executable

from tryon_core.accounts import REVOKED_MESSAGE, KeyInfo, Principal, Seen, get_key
from tryon_core.amounts import MAX_CREDITS, is_credits
from tryon_core.config import MAX_LIMIT, LimitsConfig
from tryon_core.db.prepared import Prepared, prepared_by
from tryon_core.db.schema import Timestamp, api_keys, generations
from tryon_core.errors import (
    AuthenticationFailed,
    InvalidRequest,
    PaymentRequired,
    ServiceUnavailable,
    TooManyRequests,
)
from tryon_core.ids import as_utc, utcnow
from tryon_core.key_cache import keys_changed
from tryon_core.limit_periods import LIMIT_RESETS, period_start

__all__ = [
    "LIMIT_FIELDS",
    "RETRY_AFTER_SECONDS",
    "KeyLimit",
    "MostActive",
    "Usage",
    "hold_for_key",
    "key_limit",
    "key_usage",
    "most_active",
    "recount",
    "refuse_early",
    "refuse_seen",
    "release_for_key",
    "set_limits",
    "standing",
    "too_many_active",
]

RETRY_AFTER_SECONDS = 2.0
"""Retry-After of a 429 for too many active generations: a generation takes seconds."""
_TRIES = 5


class MostActive(NamedTuple):
    """The most generations allowed at once, for the caller's key and its account (None: no
    limit)."""

    key: int | None = None
    account: int | None = None


def most_active(principal: Principal, limits: LimitsConfig) -> MostActive:
    """The caller's limits: the key's own override, else ``[limits]``; ``[limits.account]``."""
    key = None
    if principal.key_id is not None:
        key = principal.concurrent_generations or limits.concurrent_generations
    return MostActive(key=key, account=limits.account.concurrent_generations)


def too_many_active(scope: str, maximum: int) -> TooManyRequests:
    whose = "this key" if scope == "key" else "this account"
    return TooManyRequests(
        f"{whose.capitalize()} already has {maximum} generation(s) running, the most it may "
        "have at once; nothing was charged. Retry when one has finished.",
        retry_after=RETRY_AFTER_SECONDS,
        metadata={"limit": "concurrent_generations", "scope": scope, "maximum": maximum},
    )


class KeyLimit(NamedTuple):
    """A key's credit limit as it stands now."""

    limit: int | None
    reset: str
    used: int
    """Reserved and charged in the current period (0 without a limit)."""

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


def _in_period(row: Any, start: datetime) -> int:
    began = row.limit_period_start
    if row.credit_limit is None or began is None or as_utc(began) < start:
        return 0
    return int(row.limit_used)


def standing(info: KeyInfo | Seen, *, at: datetime | None = None) -> KeyLimit:
    """The key's limit, reset and use in the period holding ``at`` (now)."""
    start = period_start(info.limit_reset, at or utcnow())
    return KeyLimit(limit=info.credit_limit, reset=info.limit_reset, used=_in_period(info, start))


async def key_limit(conn: AsyncConnection, key_id: str, *, at: datetime | None = None) -> KeyLimit:
    """The key's limit, reset and use in the period holding ``at`` (now)."""
    row = (
        await conn.execute(
            select(
                api_keys.c.credit_limit,
                api_keys.c.limit_reset,
                api_keys.c.limit_used,
                api_keys.c.limit_period_start,
            ).where(api_keys.c.id == key_id)
        )
    ).first()
    if row is None:
        return KeyLimit(limit=None, reset="none", used=0)
    start = period_start(row.limit_reset, at or utcnow())
    limit = None if row.credit_limit is None else int(row.credit_limit)
    return KeyLimit(limit=limit, reset=row.limit_reset, used=_in_period(row, start))


def _refuse_limit(limit: KeyLimit, credits: int) -> NoReturn:
    assert limit.limit is not None
    raise PaymentRequired(
        f"This key may use {limit.remaining} more credit(s) "
        f"{'in all' if limit.reset == 'none' else 'this ' + _PERIOD_NAMES[limit.reset]} "
        f"(its limit is {limit.limit}); this request needs {credits}.",
        type="key_limit_exceeded",
        metadata={
            "limit": limit.limit,
            "limit_remaining": limit.remaining,
            "limit_reset": limit.reset,
            "required": credits,
        },
    )


_PERIOD_NAMES = {"daily": "UTC day", "weekly": "UTC week", "monthly": "UTC month"}


async def refuse_early(conn: AsyncConnection, key_id: str, credits: int) -> None:
    """402 ``key_limit_exceeded`` now if the key's limit cannot cover ``credits``: a cheap
    early refusal; :func:`hold_for_key` still decides."""
    _refuse_short(await key_limit(conn, key_id), credits)


def refuse_seen(seen: Seen, credits: int) -> None:
    """:func:`refuse_early` without a read: the key's limit as authentication read it."""
    _refuse_short(standing(seen), credits)


def _refuse_short(limit: KeyLimit, credits: int) -> None:
    if limit.remaining is not None and limit.remaining < credits:
        _refuse_limit(limit, credits)


async def hold_for_key(
    conn: AsyncConnection,
    key_id: str,
    credits: int,
    *,
    at: datetime,
    most: int | None,
    reset: str | None = None,
) -> None:
    """Count a generation made at ``at`` against the key: its credit limit (rolling a stale
    period over) and its active generations (at most ``most``), in one conditional UPDATE.
    Refused: 402 ``key_limit_exceeded``, 429, or 401 ``key_revoked``, and nothing changed.

    ``reset``: the key's ``limit_reset`` as last read (at authentication), which the first
    try takes instead of reading it; the UPDATE holds only while it is still the key's."""
    for _ in range(_TRIES):
        if reset is None:
            reset = await conn.scalar(select(api_keys.c.limit_reset).where(api_keys.c.id == key_id))
            if reset is None:
                raise AuthenticationFailed("Invalid or revoked API key.")
        start = period_start(reset, at)
        # a free generation spends nothing: past the limit, it still runs
        hold = _HOLD(bool(credits), most is not None)
        result = await hold.run(
            conn, key_id=key_id, reset=reset, start=start, credits=credits, most=most
        )
        if result.rowcount == 1:
            return
        row = (
            await conn.execute(
                select(
                    api_keys.c.revoked_at,
                    api_keys.c.credit_limit,
                    api_keys.c.limit_reset,
                    api_keys.c.limit_used,
                    api_keys.c.limit_period_start,
                    api_keys.c.active_generations,
                ).where(api_keys.c.id == key_id)
            )
        ).first()
        if row is None:
            raise AuthenticationFailed("Invalid or revoked API key.")
        if row.revoked_at is not None:  # since it authenticated (see tryon_core.key_cache)
            raise AuthenticationFailed(REVOKED_MESSAGE, type="key_revoked")
        if row.limit_reset != reset:
            reset = row.limit_reset  # changed meanwhile: count in the new kind of period
            continue
        if most is not None and row.active_generations >= most:
            raise too_many_active("key", most)
        if credits and row.credit_limit is not None:
            maximum = int(row.credit_limit)
            limit = KeyLimit(limit=maximum, reset=reset, used=_in_period(row, start))
            if limit.used + credits > maximum:
                _refuse_limit(limit, credits)
    raise ServiceUnavailable("The key's limits kept changing; retry.")


def _hold(credits: bool, most: bool) -> Executable:
    """Count a generation against the key: in the period beginning at ``start`` (rolled over
    if the key's is older), within its credit limit (``credits``: the generation costs some),
    among at most ``most`` active generations; only while its ``limit_reset`` is ``reset`` and the
    key is not revoked (it may have been since it authenticated: :mod:`tryon_core.key_cache`)."""
    began = api_keys.c.limit_period_start
    start = bindparam("start", type_=Timestamp)
    current = and_(began.is_not(None), began >= start)
    used = case((current, api_keys.c.limit_used), else_=0)
    unlimited = api_keys.c.credit_limit.is_(None)
    cost = bindparam("credits", type_=BigInteger)
    conditions = [
        api_keys.c.id == bindparam("key_id"),
        api_keys.c.revoked_at.is_(None),
        api_keys.c.limit_reset == bindparam("reset"),
    ]
    if credits:
        conditions.append(or_(unlimited, used + cost <= api_keys.c.credit_limit))
    if most:
        conditions.append(api_keys.c.active_generations < bindparam("most", type_=BigInteger))
    return (
        update(api_keys)
        .where(*conditions)
        .values(
            limit_used=case((unlimited, api_keys.c.limit_used), else_=used + cost),
            limit_period_start=case((unlimited, began), (current, began), else_=start),
            active_generations=api_keys.c.active_generations + 1,
        )
    )


_HOLD = prepared_by(_hold)


async def release_for_key(
    conn: AsyncConnection, key_id: str, released: int, *, made: datetime
) -> None:
    """Settlement of a counted generation made at ``made``: its place among the key's active
    generations back, and ``released`` credits back into the key's limit if the key's period
    still began at or before ``made`` (never below zero)."""
    await _RELEASE.defer(conn, key_id=key_id, released=released, made=made)


def _release() -> Executable:
    began = api_keys.c.limit_period_start
    made = bindparam("made", type_=Timestamp)
    released = bindparam("released", type_=BigInteger)
    same_period = and_(api_keys.c.credit_limit.is_not(None), began.is_not(None), began <= made)
    used = api_keys.c.limit_used
    return (
        update(api_keys)
        .where(api_keys.c.id == bindparam("key_id"))
        .values(
            active_generations=case(
                (api_keys.c.active_generations > 0, api_keys.c.active_generations - 1),
                else_=0,
            ),
            limit_used=case(
                (and_(same_period, used >= released), used - released),
                (same_period, 0),
                else_=used,
            ),
        )
    )


_RELEASE = Prepared(_release())


async def recount(conn: AsyncConnection, key_id: str, *, at: datetime | None = None) -> None:
    """Count the key's use in its current period afresh from its generations (after its limit
    or reset was set): charged if settled, else held. Call after an UPDATE of the key row in
    the same transaction, which keeps reservations and settlements of the key waiting."""
    row = (
        await conn.execute(
            select(api_keys.c.credit_limit, api_keys.c.limit_reset).where(api_keys.c.id == key_id)
        )
    ).first()
    if row is None:
        return
    if row.credit_limit is None:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(limit_used=0, limit_period_start=None)
        )
        return
    start = period_start(row.limit_reset, at or utcnow())
    held = case(
        (generations.c.settled, generations.c.credits_charged),
        (generations.c.counted, generations.c.credits_reserved),
        else_=0,
    )
    used = await conn.scalar(
        select(func.coalesce(func.sum(held), 0)).where(
            generations.c.key_id == key_id, generations.c.created_at >= _timestamp(start)
        )
    )
    await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(limit_used=min(int(used or 0), MAX_CREDITS), limit_period_start=start)
    )


class Usage(NamedTuple):
    """Credits charged for a key's generations: all time, this UTC day, week and month."""

    total: int
    daily: int
    weekly: int
    monthly: int


async def key_usage(
    conn: AsyncConnection, key_ids: list[str], *, at: datetime | None = None
) -> dict[str, Usage]:
    """What each key was charged, by when its generations were made (as its limit counts)."""
    if not key_ids:
        return {}
    now = at or utcnow()
    charged = generations.c.credits_charged
    made = generations.c.created_at

    def since(reset: str) -> Any:
        return func.coalesce(
            func.sum(case((made >= _timestamp(period_start(reset, now)), charged), else_=0)), 0
        )

    rows = await conn.execute(
        select(
            generations.c.key_id,
            func.coalesce(func.sum(charged), 0),
            since("daily"),
            since("weekly"),
            since("monthly"),
        )
        .where(generations.c.key_id.in_(key_ids), generations.c.settled.is_(True))
        .group_by(generations.c.key_id)
    )
    found = {row[0]: Usage(*(int(value) for value in row[1:])) for row in rows}
    return {key_id: found.get(key_id, Usage(0, 0, 0, 0)) for key_id in key_ids}


def _timestamp(value: datetime) -> Any:
    """A bound timestamp, stored as the columns are on either database."""
    return literal(value, Timestamp)


LIMIT_FIELDS = ("limit", "limit_reset", "requests_per_minute", "concurrent_generations")
"""What :func:`set_limits` changes, as the API and the CLI name them."""
_COLUMNS = {"limit": "credit_limit"}


def _checked(field: str, value: Any) -> Any:
    """``value`` for ``field``, or 400 naming it."""
    if field == "limit_reset":
        if value not in LIMIT_RESETS:
            raise InvalidRequest(
                f"limit_reset is one of {', '.join(LIMIT_RESETS)}.",
                param="limit_reset",
                metadata={"limit_resets": list(LIMIT_RESETS)},
            )
        return value
    if value is None:
        return None
    if field == "limit":
        if not is_credits(value):
            raise InvalidRequest(
                f"limit is a whole number of credits from 0 to {MAX_CREDITS}, or null for none.",
                param="limit",
                metadata={"maximum": MAX_CREDITS},
            )
        return value
    if field in ("requests_per_minute", "concurrent_generations"):
        if type(value) is not int or not 1 <= value <= MAX_LIMIT:
            raise InvalidRequest(
                f"{field} is a whole number from 1 to {MAX_LIMIT}, or null for the default.",
                param=field,
                metadata={"maximum": MAX_LIMIT},
            )
        return value
    raise InvalidRequest(f"A key has no limit {field!r}.", param=field)


async def set_limits(
    conn: AsyncConnection, key_id: str, changes: dict[str, Any], *, account_id: str | None = None
) -> KeyInfo:
    """Change the key's limits (fields of :data:`LIMIT_FIELDS`; a field left out is kept, None
    clears it) and return the key. With ``account_id``, another account's key is a 404. A new
    credit limit or reset counts the current period afresh (:func:`recount`)."""
    values = {
        _COLUMNS.get(field, field): _checked(field, value) for field, value in changes.items()
    }
    await get_key(conn, key_id, account_id=account_id)  # 404 before anything is written
    if values:
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(values))
        keys_changed()
        if {"credit_limit", "limit_reset"} & values.keys():
            await recount(conn, key_id)
    return await get_key(conn, key_id, account_id=account_id)
