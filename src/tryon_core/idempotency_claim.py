"""The idempotency claim a request holds, and the generation it opens under it.

:mod:`tryon_core.idempotency` claims a key before it runs a request; the pipeline opens the
request's generation later, deep below the route. Writing the generation's id onto the claim
in the very transaction that opens the generation (and reserves its credits) means a claim
can never lose track of work it paid for: should the process die before the answer is
stored, a retry learns which generation the key already made instead of making a second.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import and_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.db.schema import idempotency_keys as keys_table

__all__ = ["Claim", "current_claim", "link_generation", "owned_by"]


class Claim(msgspec.Struct, frozen=True):
    """A pending ``idempotency_keys`` row this request owns; ``token`` (its created_at)
    guards every later write, so a claim taken over by another request is left alone."""

    account_id: str
    key: str
    token: datetime


current_claim: ContextVar[Claim | None] = ContextVar("tryon_idempotency_claim", default=None)


def owned_by(claim: Claim) -> Any:
    return and_(
        keys_table.c.account_id == claim.account_id,
        keys_table.c.key == claim.key,
        keys_table.c.status == "pending",
        keys_table.c.created_at == claim.token,
    )


async def link_generation(conn: AsyncConnection, generation_id: str) -> None:
    """Record ``generation_id`` on the current request's claim, if it holds one."""
    claim = current_claim.get()
    if claim is not None:
        await conn.execute(
            update(keys_table).where(owned_by(claim)).values(generation_id=generation_id)
        )
