"""Accounts, API keys and who is calling (:class:`Principal`).

A key is shown once; only its SHA-256 and a short prefix are kept. Every key has a scope:
``inference`` (try-ons, jobs, files, credits) or ``management`` (keys, demo sessions,
webhooks, usage). An account may be marked operator (``tryon accounts operator``): that is
for the console's operator pages, never an API scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.db.engine import Database
from tryon_core.db.prepared import Prepared
from tryon_core.db.schema import accounts, api_keys
from tryon_core.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    echo,
)
from tryon_core.ids import as_utc, new_id, utcnow
from tryon_core.key_cache import keys_changed
from tryon_core.uninterrupted import uninterrupted

__all__ = [
    "KEY_PREFIX",
    "SCOPES",
    "Account",
    "KeyInfo",
    "KeyUsage",
    "Principal",
    "Seen",
    "authenticate",
    "bearer_token",
    "check_scope",
    "console_principal",
    "create_account",
    "create_key",
    "ensure_key_live",
    "get_account",
    "get_key",
    "hash_key",
    "is_operator",
    "key_principal",
    "list_keys",
    "record_key_usage",
    "revoke_key",
    "set_operator",
]

log = logging.getLogger("tryon.accounts")

KEY_PREFIX = "tryon_"
_LAST_USED_RESOLUTION = timedelta(seconds=60)  # spare the database a write on every request
REVOKED_MESSAGE = "This API key was revoked; nothing more is done or charged for it."
_VISIBLE = 12  # "tryon_" plus six characters: enough to tell keys apart, useless to an attacker
SCOPES = ("inference", "management")
"""What a key may be for; a key has exactly one."""


class Account(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    balance: int
    reserved: int
    created_at: datetime


class KeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    scope: str = "inference"
    credit_limit: int | None = None
    """Credits the key may use per ``limit_reset`` period (None: no limit of its own)."""
    limit_reset: str = "none"
    limit_used: int = 0
    """Reserved and charged in the period that began at ``limit_period_start`` (with a limit;
    :func:`tryon_core.key_limits.standing` says what is left now)."""
    limit_period_start: datetime | None = None
    requests_per_minute: int | None = None
    concurrent_generations: int | None = None


class Seen(msgspec.Struct, frozen=True, kw_only=True):
    """What authentication read with a key, for checks that need not read it again: the
    account's spendable balance and the key's credit limit as they stood then. Only early,
    advisory refusals use it; the reservation's conditional UPDATEs still decide."""

    balance: int
    credit_limit: int | None = None
    limit_reset: str = "none"
    limit_used: int = 0
    limit_period_start: datetime | None = None
    last_used_at: datetime | None = None
    """When the key was last used, as recorded then (:class:`KeyUsage` notes it again)."""
    remembered: bool = False
    """Read by an earlier request (:mod:`tryon_core.key_cache`): what it would refuse is read
    afresh first."""


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling, and what they may do.

    ``kind`` is ``key`` (an API key: ``key_id``, one scope), ``demo`` (a demo session's token:
    ``demo_session_id``, no scope; the routes open to demo sessions say so) or ``console`` (a
    signed-in console session: both scopes, no key). ``models``, when set, are the only models
    this caller may use.

    ``requests_per_minute`` and ``concurrent_generations`` are the key's own limits, read with
    the key at authentication; None (and always for console and demo callers): the ``[limits]``
    default applies.
    """

    key_id: str | None
    account_id: str
    scopes: frozenset[str] = frozenset({"inference"})
    kind: str = "key"
    demo_session_id: str | None = None
    models: tuple[str, ...] | None = None
    requests_per_minute: int | None = None
    concurrent_generations: int | None = None
    seen: Seen | None = None
    """An API key's account and limit as authentication read them (None for other callers)."""


def console_principal(account_id: str) -> Principal:
    """A console session acting for ``account_id``, with both scopes."""
    return Principal(kind="console", key_id=None, account_id=account_id, scopes=frozenset(SCOPES))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def create_account(conn: AsyncConnection, *, name: str = "") -> str:
    account_id = new_id("acct")
    await conn.execute(
        insert(accounts).values(
            id=account_id, name=name, balance=0, reserved=0, created_at=utcnow()
        )
    )
    return account_id


async def get_account(conn: AsyncConnection, account_id: str) -> Account:
    row = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).first()
    if row is None:
        raise NotFound(f"No account {echo(account_id)!r}.", param="account_id")
    return Account(
        id=row.id,
        name=row.name,
        balance=row.balance,
        reserved=row.reserved,
        created_at=as_utc(row.created_at),
    )


async def is_operator(conn: AsyncConnection, account_id: str) -> bool:
    """Whether the account is marked operator (False for an account that does not exist)."""
    return bool(await conn.scalar(select(accounts.c.operator).where(accounts.c.id == account_id)))


async def set_operator(conn: AsyncConnection, account_id: str, on: bool) -> None:
    """Mark the account operator, or not (404 for an unknown account)."""
    await get_account(conn, account_id)
    await conn.execute(update(accounts).where(accounts.c.id == account_id).values(operator=on))


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise InvalidRequest(
            f"A key's scope is one of {', '.join(SCOPES)}; not {echo(scope)!r}.",
            param="scope",
            metadata={"scopes": list(SCOPES)},
        )
    return scope


async def create_key(
    conn: AsyncConnection, *, account_id: str, name: str, scope: str = "inference"
) -> tuple[KeyInfo, str]:
    """Create a key for an existing account. Returns its record and the secret (shown once)."""
    check_scope(scope)
    await get_account(conn, account_id)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    info = KeyInfo(
        id=new_id("key"),
        account_id=account_id,
        name=name,
        prefix=secret[:_VISIBLE],
        created_at=utcnow(),
        scope=scope,
    )
    await conn.execute(
        insert(api_keys).values(
            id=info.id,
            account_id=account_id,
            name=name,
            prefix=info.prefix,
            hash=hash_key(secret),
            created_at=info.created_at,
            scope=scope,
        )
    )
    return info, secret


async def list_keys(conn: AsyncConnection, *, account_id: str | None = None) -> list[KeyInfo]:
    query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
    if account_id is not None:
        query = query.where(api_keys.c.account_id == account_id)
    return [_key_info(row._mapping) for row in await conn.execute(query)]


async def get_key(conn: AsyncConnection, key_id: str, *, account_id: str | None = None) -> KeyInfo:
    """One key; with ``account_id``, another account's key is reported as absent (404)."""
    condition = api_keys.c.id == key_id
    if account_id is not None:
        condition &= api_keys.c.account_id == account_id
    row = (await conn.execute(select(api_keys).where(condition))).first()
    if row is None:
        raise NotFound(f"No key {echo(key_id)!r}.", param="id")
    return _key_info(row._mapping)


async def revoke_key(
    conn: AsyncConnection, key_id: str, *, account_id: str | None = None
) -> KeyInfo:
    """Revoke at once. With ``account_id``, another account's key is reported as absent."""
    condition = api_keys.c.id == key_id
    if account_id is not None:
        condition &= api_keys.c.account_id == account_id
    row = (await conn.execute(select(api_keys).where(condition))).first()
    if row is None:
        raise NotFound(f"No key {echo(key_id)!r}.", param="id")
    if row.revoked_at is None:
        await conn.execute(update(api_keys).where(condition).values(revoked_at=utcnow()))
        keys_changed()
    return _key_info((await conn.execute(select(api_keys).where(condition))).one()._mapping)


class KeyUsage:
    """When each key was last used, kept off the request path.

    Authentication only reads (it never waits for SQLite's one writer); it notes a key whose
    ``last_used_at`` is older than a minute here, and :meth:`flush` writes what was noted in
    one transaction, from a background task (:func:`record_key_usage`).
    """

    def __init__(self) -> None:
        self._due: dict[str, datetime] = {}

    def note(self, key_id: str, last_used_at: datetime | None) -> None:
        now = utcnow()
        if last_used_at is None or now - as_utc(last_used_at) > _LAST_USED_RESOLUTION:
            self._due[key_id] = now

    async def flush(self, database: Database) -> int:
        """Write the noted times; returns how many keys. What could not be written is kept."""
        due, self._due = self._due, {}
        if not due:
            return 0
        try:
            async with database.transaction() as conn:
                for key_id, used in due.items():
                    await conn.execute(
                        update(api_keys)
                        .where(
                            api_keys.c.id == key_id,
                            or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < used),
                        )
                        .values(last_used_at=used)
                    )
        except BaseException:
            self._due = due | self._due
            raise
        return len(due)


async def record_key_usage(usage: KeyUsage, database: Database, *, every: float = 5.0) -> None:
    """Flush ``usage`` every ``every`` seconds until cancelled, then once more."""
    try:
        while True:
            await asyncio.sleep(every)
            try:
                await usage.flush(database)
            except ServiceUnavailable:
                log.warning("could not record when keys were last used; will retry")
    finally:
        with contextlib.suppress(Exception):
            await uninterrupted(usage.flush(database))


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer tryon_…`` header, or 401 (it is not echoed)."""
    if not authorization:
        raise AuthenticationFailed("Missing Authorization header; send 'Bearer tryon_…'.")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(KEY_PREFIX) or len(token) > 200:
        raise AuthenticationFailed("Malformed API key; send 'Authorization: Bearer tryon_…'.")
    return token


async def authenticate(
    conn: AsyncConnection, authorization: str | None, *, usage: KeyUsage | None = None
) -> Principal:
    """Resolve an ``Authorization: Bearer tryon_…`` header holding an API key, or raise 401.

    Reads only. :func:`tryon_core.principals.authenticate` takes demo session tokens too.
    """
    return await key_principal(conn, bearer_token(authorization), usage=usage)


async def key_principal(
    conn: AsyncConnection, token: str, *, usage: KeyUsage | None = None
) -> Principal:
    """The caller holding the API key ``token``, or 401. Reads only.

    The lookup is by SHA-256 of the whole key, so no secret is ever compared byte by byte.
    With ``usage``, the key's use is noted there (written later, see :class:`KeyUsage`).
    """
    row = await _KEY_HOLDER.first(conn, hash=hash_key(token))
    if row is None or row.revoked_at is not None:
        raise AuthenticationFailed("Invalid or revoked API key.")
    if usage is not None:
        usage.note(row.id, row.last_used_at)
    return Principal(
        key_id=row.id,
        account_id=row.account_id,
        scopes=frozenset({row.scope}),
        requests_per_minute=row.requests_per_minute,
        concurrent_generations=row.concurrent_generations,
        seen=Seen(
            balance=int(row.balance),
            credit_limit=row.credit_limit,
            limit_reset=row.limit_reset,
            limit_used=int(row.limit_used),
            limit_period_start=as_utc(row.limit_period_start) if row.limit_period_start else None,
            last_used_at=row.last_used_at,
        ),
    )


_KEY_HOLDER = Prepared(
    select(
        api_keys.c.id,
        api_keys.c.account_id,
        api_keys.c.revoked_at,
        api_keys.c.last_used_at,
        api_keys.c.scope,
        api_keys.c.requests_per_minute,
        api_keys.c.concurrent_generations,
        api_keys.c.credit_limit,
        api_keys.c.limit_reset,
        api_keys.c.limit_used,
        api_keys.c.limit_period_start,
        accounts.c.balance,
    )
    .join(accounts, accounts.c.id == api_keys.c.account_id)
    .where(api_keys.c.hash == bindparam("hash"))
)
"""The key with this hash, and what authentication reads with it (see :class:`Seen`)."""


async def ensure_key_live(conn: AsyncConnection, key_id: str) -> None:
    """Raise 401 if the key was revoked since it authenticated: live work (a stream, a
    WebSocket, a generation about to be charged) ends with its key."""
    revoked = await _KEY_REVOKED.scalar(conn, key_id=key_id)
    if revoked is not None:
        raise AuthenticationFailed(REVOKED_MESSAGE, type="key_revoked")


_KEY_REVOKED = Prepared(select(api_keys.c.revoked_at).where(api_keys.c.id == bindparam("key_id")))


def _key_info(row: Any) -> KeyInfo:
    return KeyInfo(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=as_utc(row["created_at"]),
        last_used_at=as_utc(row["last_used_at"]) if row["last_used_at"] else None,
        revoked_at=as_utc(row["revoked_at"]) if row["revoked_at"] else None,
        scope=row["scope"],
        credit_limit=row["credit_limit"],
        limit_reset=row["limit_reset"],
        limit_used=int(row["limit_used"]),
        limit_period_start=(
            as_utc(row["limit_period_start"]) if row["limit_period_start"] else None
        ),
        requests_per_minute=row["requests_per_minute"],
        concurrent_generations=row["concurrent_generations"],
    )
