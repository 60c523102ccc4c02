"""Each account's webhook signing secret: created on first use, replaced when rotated."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.db.conflicts import insert_on_conflict
from tryon_core.db.schema import webhook_secrets
from tryon_core.ids import as_utc, utcnow

__all__ = ["WebhookSecret", "get_secret", "rotate_secret"]

PREFIX = "whsec_"


@dataclass(frozen=True, kw_only=True)
class WebhookSecret:
    account_id: str
    secret: str
    created_at: datetime


def _new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


async def get_secret(conn: AsyncConnection, account_id: str) -> WebhookSecret:
    """The account's secret, created now if it has none. Needs a write transaction.

    Two first reads at once both insert with ``ON CONFLICT DO NOTHING``: one row wins, and both
    read that row back.
    """
    found = await _read(conn, account_id)
    if found is not None:
        return found
    await conn.execute(
        insert_on_conflict(conn, webhook_secrets)
        .values(account_id=account_id, secret=_new_secret(), created_at=utcnow())
        .on_conflict_do_nothing(index_elements=[webhook_secrets.c.account_id])
    )
    created = await _read(conn, account_id)
    assert created is not None
    return created


async def rotate_secret(conn: AsyncConnection, account_id: str) -> WebhookSecret:
    """Replace the account's secret; deliveries from now on are signed with the new one only."""
    statement = insert_on_conflict(conn, webhook_secrets).values(
        account_id=account_id, secret=_new_secret(), created_at=utcnow()
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[webhook_secrets.c.account_id],
            set_={"secret": statement.excluded.secret, "created_at": statement.excluded.created_at},
        )
    )
    rotated = await _read(conn, account_id)
    assert rotated is not None
    return rotated


async def _read(conn: AsyncConnection, account_id: str) -> WebhookSecret | None:
    query = select(webhook_secrets).where(webhook_secrets.c.account_id == account_id)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return WebhookSecret(
        account_id=row.account_id, secret=row.secret, created_at=as_utc(row.created_at)
    )
