"""One account's generations, newest first, a page at a time: the query every listing shares
(``GET /api/v1/tryon``, ``GET /api/v1/generations``, the console's tables and CSV).

Pages are cut by keyset, not OFFSET: rows are ordered by ``(created_at, id)`` descending and
a cursor holds the last row's pair, so a page costs the same however deep it is and rows that
share a timestamp are neither skipped nor repeated. A cursor is opaque to clients; one that
the API did not hand out is refused (``400``, ``param: cursor``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.db.schema import attempts, generations
from tryon_core.errors import InvalidRequest
from tryon_core.ids import as_utc

__all__ = ["GenerationFilter", "attempts_of", "decode_cursor", "encode_cursor", "page_rows"]

_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")


class GenerationFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which of an account's generations a listing keeps. ``None`` keeps every value."""

    account_id: str
    key_id: str | None = None
    """Only those the key opened."""
    demo_session_id: str | None = None
    """Only those the demo session opened."""
    status: str | None = None
    model: str | None = None
    """The model that served it."""
    created_after: datetime | None = None
    """Created at or after this instant."""
    created_before: datetime | None = None
    """Created strictly before this instant."""


async def page_rows(
    conn: AsyncConnection, wanted: GenerationFilter, *, limit: int, cursor: str | None
) -> tuple[Sequence[Any], str | None]:
    """Up to ``limit`` generation rows after ``cursor``, newest first, and the cursor of the
    next page (None on the last)."""
    g = generations.c
    query = select(generations).where(g.account_id == wanted.account_id)
    for column, value in (
        (g.key_id, wanted.key_id),
        (g.demo_session_id, wanted.demo_session_id),
        (g.status, wanted.status),
        (g.model, wanted.model),
    ):
        if value is not None:
            query = query.where(column == value)
    if wanted.created_after is not None:
        query = query.where(g.created_at >= _utc(wanted.created_after))
    if wanted.created_before is not None:
        query = query.where(g.created_at < _utc(wanted.created_before))
    if cursor is not None:
        created, last_id = decode_cursor(cursor)
        query = query.where(
            or_(g.created_at < created, and_(g.created_at == created, g.id < last_id))
        )
    query = query.order_by(g.created_at.desc(), g.id.desc()).limit(limit + 1)
    rows = (await conn.execute(query)).all()
    page = rows[:limit]
    more = len(rows) > limit
    return page, encode_cursor(page[-1].created_at, page[-1].id) if more else None


async def attempts_of(conn: AsyncConnection, generation_ids: Sequence[str]) -> dict[str, list[Any]]:
    """The attempt rows of a page's generations, in order, read in one query."""
    found: dict[str, list[Any]] = {generation_id: [] for generation_id in generation_ids}
    if generation_ids:
        for row in await conn.execute(
            select(attempts)
            .where(attempts.c.generation_id.in_(generation_ids))
            .order_by(attempts.c.generation_id, attempts.c.position)
        ):
            found[row.generation_id].append(row)
    return found


def encode_cursor(created: datetime, generation_id: str) -> str:
    raw = f"{_utc(created).isoformat()}|{generation_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor holds; 400 for anything :func:`encode_cursor` could not have made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_text, generation_id = raw.split("|", 1)
        created = datetime.fromisoformat(created_text)
        if created.utcoffset() != timedelta(0) or not _ID.fullmatch(generation_id):
            raise ValueError(cursor)
        if encode_cursor(created, generation_id) != cursor:
            raise ValueError(cursor)  # not in the one form we write
        return created, generation_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("This cursor is not one the API returned.", param="cursor") from None


def _utc(value: datetime) -> datetime:
    """The same instant in UTC (stored timestamps are UTC; SQLite keeps no offset)."""
    return as_utc(value).astimezone(UTC)
