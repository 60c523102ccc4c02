"""Spend over a period, grouped by account, key or model (``tryon usage``). Reads only.

A generation counts in the period it was created in (UTC), with what it was charged. Its model
is the one that served it, else the last one tried (so failures are counted against the model
that failed); a generation that never reached a model is under ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.db.schema import api_keys, attempts, generations

__all__ = ["GROUPINGS", "Grouping", "SpendRow", "spend"]

Grouping = Literal["account", "key", "model"]
GROUPINGS: tuple[Grouping, ...] = ("account", "key", "model")


class SpendRow(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str | None
    """Set when grouping by account or key."""
    key_id: str | None
    key_name: str | None
    model: str | None
    generations: int
    succeeded: int
    failed: int
    credits: int
    """Credits charged."""


async def spend(
    conn: AsyncConnection,
    by: Grouping,
    *,
    since: datetime,
    until: datetime,
    account_id: str | None = None,
) -> list[SpendRow]:
    """Generations created in ``[since, until)`` (of ``account_id`` only, if given), grouped
    ``by``: dearest first, then by name."""
    last_tried = (
        select(attempts.c.model)
        .where(attempts.c.generation_id == generations.c.id)
        .order_by(attempts.c.position.desc())
        .limit(1)
        .scalar_subquery()
    )
    period = select(
        generations.c.account_id,
        generations.c.key_id,
        func.coalesce(generations.c.model, last_tried).label("model"),
        generations.c.status,
        generations.c.credits_charged,
    ).where(generations.c.created_at >= since, generations.c.created_at < until)
    if account_id is not None:
        period = period.where(generations.c.account_id == account_id)
    rows = period.subquery()
    keys: dict[Grouping, list[Any]] = {
        "account": [rows.c.account_id],
        "key": [rows.c.account_id, rows.c.key_id],
        "model": [rows.c.model],
    }
    found = await conn.execute(
        select(
            *keys[by],
            func.count().label("generations"),
            func.sum(case((rows.c.status == "completed", 1), else_=0)).label("succeeded"),
            func.sum(case((rows.c.status == "failed", 1), else_=0)).label("failed"),
            func.sum(rows.c.credits_charged).label("credits"),
        ).group_by(*keys[by])
    )
    totals = [dict(row._mapping) for row in found]
    names = await _key_names(conn, [t["key_id"] for t in totals if t.get("key_id")])
    result = [
        SpendRow(
            account_id=t.get("account_id"),
            key_id=t.get("key_id"),
            key_name=names.get(t.get("key_id") or ""),
            model=t.get("model"),
            generations=int(t["generations"]),
            succeeded=int(t["succeeded"] or 0),
            failed=int(t["failed"] or 0),
            credits=int(t["credits"] or 0),
        )
        for t in totals
    ]
    return sorted(
        result,
        key=lambda r: (-r.credits, r.account_id or "", r.key_id or "", r.model or ""),
    )


async def _key_names(conn: AsyncConnection, key_ids: Sequence[str]) -> dict[str, str]:
    if not key_ids:
        return {}
    rows = await conn.execute(
        select(api_keys.c.id, api_keys.c.name).where(api_keys.c.id.in_(key_ids))
    )
    return {key_id: name for key_id, name in rows}
