"""Accounts and API keys. A key is shown once; only its SHA-256 and a short prefix are kept."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.db.schema import accounts, api_keys
from tryon_core.errors import AuthenticationFailed, NotFound, echo
from tryon_core.ids import as_utc, new_id, utcnow

__all__ = [
    "KEY_PREFIX",
    "Account",
    "KeyInfo",
    "Principal",
    "authenticate",
    "create_account",
    "create_key",
    "get_account",
    "hash_key",
    "list_keys",
    "revoke_key",
]

KEY_PREFIX = "tryon_"
_LAST_USED_RESOLUTION = timedelta(seconds=60)  # spare the database a write on every request
_VISIBLE = 12  # "tryon_" plus six characters: enough to tell keys apart, useless to an attacker


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


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the key that authenticated and its account."""

    key_id: str
    account_id: str


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


async def create_key(conn: AsyncConnection, *, account_id: str, name: str) -> tuple[KeyInfo, str]:
    """Create a key for an existing account. Returns its record and the secret (shown once)."""
    await get_account(conn, account_id)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    info = KeyInfo(
        id=new_id("key"),
        account_id=account_id,
        name=name,
        prefix=secret[:_VISIBLE],
        created_at=utcnow(),
    )
    await conn.execute(
        insert(api_keys).values(
            id=info.id,
            account_id=account_id,
            name=name,
            prefix=info.prefix,
            hash=hash_key(secret),
            created_at=info.created_at,
        )
    )
    return info, secret


async def list_keys(conn: AsyncConnection, *, account_id: str | None = None) -> list[KeyInfo]:
    query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
    if account_id is not None:
        query = query.where(api_keys.c.account_id == account_id)
    return [_key_info(row._mapping) for row in await conn.execute(query)]


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
    return _key_info((await conn.execute(select(api_keys).where(condition))).one()._mapping)


async def authenticate(conn: AsyncConnection, authorization: str | None) -> Principal:
    """Resolve an ``Authorization: Bearer tryon_…`` header, or raise 401.

    The lookup is by SHA-256 of the whole key, so no secret is ever compared byte by byte.
    """
    if not authorization:
        raise AuthenticationFailed("Missing Authorization header; send 'Bearer tryon_…'.")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(KEY_PREFIX) or len(token) > 200:
        raise AuthenticationFailed("Malformed API key; send 'Authorization: Bearer tryon_…'.")
    row = (
        await conn.execute(
            select(
                api_keys.c.id, api_keys.c.account_id, api_keys.c.revoked_at, api_keys.c.last_used_at
            ).where(api_keys.c.hash == hash_key(token))
        )
    ).first()
    if row is None or row.revoked_at is not None:
        raise AuthenticationFailed("Invalid or revoked API key.")
    now = utcnow()
    if row.last_used_at is None or now - as_utc(row.last_used_at) > _LAST_USED_RESOLUTION:
        await conn.execute(update(api_keys).where(api_keys.c.id == row.id).values(last_used_at=now))
    return Principal(key_id=row.id, account_id=row.account_id)


def _key_info(row: Any) -> KeyInfo:
    return KeyInfo(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=as_utc(row["created_at"]),
        last_used_at=as_utc(row["last_used_at"]) if row["last_used_at"] else None,
        revoked_at=as_utc(row["revoked_at"]) if row["revoked_at"] else None,
    )
