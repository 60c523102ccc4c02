"""Web console sessions and one-time sign-in links, kept in the database.

A session is what a console cookie stands for: one account, until it expires or is ended. The
cookie holds a random token; only its SHA-256 is stored, so a copy of the database opens no
session. A session opened with a management key also ends when that key is revoked.

A sign-in link (``tryon console link``) carries another random token, valid for minutes and
used once: using it is one conditional UPDATE, so two uses at once cannot both succeed.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Literal

import msgspec
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.accounts import get_account
from tryon_core.db.schema import api_keys, console_links, console_sessions
from tryon_core.ids import as_utc, new_id, utcnow

__all__ = [
    "LINK_PREFIX",
    "SESSION_PREFIX",
    "ConsoleSession",
    "LinkRefused",
    "create_link",
    "end_session",
    "find_session",
    "start_session",
    "use_link",
]

SESSION_PREFIX = "tcs_"
LINK_PREFIX = "tcl_"
_KEEP_ENDED = timedelta(days=1)  # rows past their end are deleted this long afterwards
_MAX_TOKEN = 100


class ConsoleSession(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    key_id: str | None
    """The management key that signed in; None for a one-time link."""
    created_at: datetime
    expires_at: datetime


class LinkRefused(msgspec.Struct, frozen=True, kw_only=True):
    """Why a sign-in link did not sign in."""

    reason: Literal["unknown", "used", "expired"]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _plausible(token: str, prefix: str) -> bool:
    return token.startswith(prefix) and len(token) <= _MAX_TOKEN and token.isascii()


async def start_session(
    conn: AsyncConnection, *, account_id: str, key_id: str | None, ttl: timedelta
) -> tuple[ConsoleSession, str]:
    """Open a session for an existing account; returns it and the cookie's token."""
    await get_account(conn, account_id)
    now = utcnow()
    await _forget_old(conn, now)
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    session = ConsoleSession(
        id=new_id("csn"),
        account_id=account_id,
        key_id=key_id,
        created_at=now,
        expires_at=now + ttl,
    )
    await conn.execute(
        insert(console_sessions).values(
            id=session.id,
            token_hash=_hash(token),
            account_id=account_id,
            key_id=key_id,
            created_at=session.created_at,
            expires_at=session.expires_at,
        )
    )
    return session, token


async def find_session(conn: AsyncConnection, token: str) -> ConsoleSession | None:
    """The live session of a cookie's token: not ended, not expired, its key not revoked."""
    if not _plausible(token, SESSION_PREFIX):
        return None
    row = (
        await conn.execute(
            select(console_sessions, api_keys.c.revoked_at)
            .outerjoin(api_keys, api_keys.c.id == console_sessions.c.key_id)
            .where(console_sessions.c.token_hash == _hash(token))
        )
    ).first()
    if row is None or row.ended_at is not None or row.revoked_at is not None:
        return None
    if as_utc(row.expires_at) <= utcnow():
        return None
    return ConsoleSession(
        id=row.id,
        account_id=row.account_id,
        key_id=row.key_id,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
    )


async def end_session(conn: AsyncConnection, token: str) -> bool:
    """End the session at once (sign-out). False if there was no live one."""
    if not _plausible(token, SESSION_PREFIX):
        return False
    result = await conn.execute(
        update(console_sessions)
        .where(console_sessions.c.token_hash == _hash(token), console_sessions.c.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    return result.rowcount == 1


async def create_link(
    conn: AsyncConnection, *, account_id: str, ttl: timedelta
) -> tuple[str, datetime]:
    """A one-time sign-in token for an existing account; returns it and when it expires."""
    await get_account(conn, account_id)
    now = utcnow()
    await _forget_old(conn, now)
    token = LINK_PREFIX + secrets.token_urlsafe(32)
    expires = now + ttl
    await conn.execute(
        insert(console_links).values(
            token_hash=_hash(token), account_id=account_id, created_at=now, expires_at=expires
        )
    )
    return token, expires


async def use_link(conn: AsyncConnection, token: str) -> str | LinkRefused:
    """Spend a sign-in link: its account id, or why it cannot be used (it stays spent)."""
    if not _plausible(token, LINK_PREFIX):
        return LinkRefused(reason="unknown")
    now = utcnow()
    hashed = _hash(token)
    account_id = (
        await conn.execute(
            update(console_links)
            .where(
                console_links.c.token_hash == hashed,
                console_links.c.used_at.is_(None),
                console_links.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(console_links.c.account_id)
        )
    ).scalar_one_or_none()
    if account_id is not None:
        return str(account_id)
    row = (
        await conn.execute(select(console_links).where(console_links.c.token_hash == hashed))
    ).first()
    if row is None:
        return LinkRefused(reason="unknown")
    return LinkRefused(reason="used" if row.used_at is not None else "expired")


async def _forget_old(conn: AsyncConnection, now: datetime) -> None:
    """Delete sessions and links that ended more than a day ago (kept that long for the
    messages a late use gets)."""
    cutoff = now - _KEEP_ENDED
    await conn.execute(delete(console_links).where(console_links.c.expires_at < cutoff))
    await conn.execute(delete(console_sessions).where(console_sessions.c.expires_at < cutoff))
