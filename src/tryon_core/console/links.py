"""One-time sign-in links as ``tryon console link`` prints them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.config import Settings
from tryon_core.console import compat
from tryon_core.console_sessions import create_link
from tryon_core.errors import InvalidRequest
from tryon_core.reports import list_accounts

__all__ = ["default_account", "new_sign_in_link"]


async def default_account(conn: AsyncConnection) -> str:
    """The account a link signs in to when none is named: the first operator account (the
    oldest), else the only account there is."""
    found = await list_accounts(conn)
    for account in found:
        if await compat.is_operator(conn, account.id):
            return account.id
    if len(found) == 1:
        return found[0].id
    if not found:
        raise InvalidRequest("There is no account yet: `tryon keys create` makes one.")
    raise InvalidRequest(
        f"There are {len(found)} accounts and none is an operator: name one with "
        "--account ID (`tryon keys list` shows them)."
    )


async def new_sign_in_link(
    conn: AsyncConnection, settings: Settings, *, account_id: str | None
) -> tuple[str, str, datetime]:
    """A new link: (its URL, the account it signs in to, when it expires)."""
    chosen = account_id or await default_account(conn)
    ttl = timedelta(minutes=settings.console.link_minutes)
    token, expires = await create_link(conn, account_id=chosen, ttl=ttl)
    return f"{settings.server.base_url}/sign-in/link?token={token}", chosen, expires
