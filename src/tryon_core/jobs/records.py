"""Generations as usage records (``GET /api/v1/generations``, ``GET /api/v1/generation``):
who opened each, what it was charged, every attempt with its provider, task id and timings.

Where :mod:`tryon_core.jobs.view` shows a job to the client waiting for it (images, progress),
a record is for the account looking back at what it spent. A page's attempts are read in one
query.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.db.schema import generations
from tryon_core.ids import as_utc
from tryon_core.jobs.paging import attempts_of
from tryon_core.jobs.view import JobError
from tryon_core.model_options import AttemptOptions, stored_options

__all__ = [
    "AttemptRecord",
    "GenerationDetail",
    "GenerationRecord",
    "load_detail",
    "render_records",
]


class AttemptRecord(msgspec.Struct, kw_only=True):
    position: int
    """1 for the first model tried, 2 for the first fallback, ..."""
    model: str
    provider: str
    status: str
    """``running``, ``succeeded``, ``failed`` or ``cancelled``."""
    task_id: str | None
    """The upstream's id for the task, where the provider gives one."""
    error_type: str | None
    started_at: str
    finished_at: str | None
    duration_ms: int | None
    """None while the attempt runs."""
    options: AttemptOptions | msgspec.UnsetType = msgspec.UNSET
    """Which of the request's per-model options this model took (``applied``) and did not
    (``dropped``); absent when the request sent none."""


class GenerationRecord(msgspec.Struct, kw_only=True):
    id: str
    created_at: str
    completed_at: str | None
    status: str
    mode: str
    """``sync`` or ``async``."""
    route: str
    """The endpoint that took the request: ``native`` or ``chat``."""
    model: str | None
    """The model that served it; None until one did (and for failures)."""
    provider: str | None
    """The provider of the attempt that succeeded, else of the last attempt."""
    key_id: str | None
    """The key that opened it; None for a demo session or the console."""
    demo_session_id: str | None
    credits_reserved: int
    """Held when it was accepted (the dearest candidate's price for each image)."""
    credits_charged: int
    """What it cost: 0 unless it completed."""
    duration_ms: int | None
    """From acceptance to the end; None while it runs."""
    attempts: list[AttemptRecord]
    error: JobError | None
    object: Literal["generation"] = "generation"


class GenerationDetail(GenerationRecord, kw_only=True):
    """A record plus the fields OpenRouter's ``GET /api/v1/generation`` has, under its names."""

    total_cost: int
    """Credits charged (OpenRouter counts dollars; the gateway counts credits)."""
    usage: int
    """The same as ``total_cost``."""
    provider_name: str | None
    upstream_id: str | None
    """The upstream task id of the attempt that served it, else of the last attempt."""
    latency: int | None
    """Milliseconds from acceptance to the result (``duration_ms``)."""
    generation_time: int | None
    """Milliseconds the serving attempt took; None when none served."""
    cancelled: bool
    num_media_prompt: int
    """Images sent: the person and each garment."""


async def render_records(conn: AsyncConnection, rows: Sequence[Any]) -> list[GenerationRecord]:
    """Records for generation rows, with every row's attempts read in one query."""
    tried = await attempts_of(conn, [row.id for row in rows])
    return [_record(row, [_attempt(a) for a in tried[row.id]]) for row in rows]


async def load_detail(
    conn: AsyncConnection, generation_id: str, *, account_id: str, key_id: str | None
) -> GenerationDetail | None:
    """The generation, or None unless it is ``account_id``'s (and, with ``key_id``, that
    key's)."""
    query = select(generations).where(
        generations.c.id == generation_id, generations.c.account_id == account_id
    )
    if key_id is not None:
        query = query.where(generations.c.key_id == key_id)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    record = (await render_records(conn, [row]))[0]
    served = _serving(record.attempts)
    last = served or (record.attempts[-1] if record.attempts else None)
    request = row.request if isinstance(row.request, dict) else {}
    return GenerationDetail(
        **msgspec.structs.asdict(record),
        total_cost=record.credits_charged,
        usage=record.credits_charged,
        provider_name=record.provider,
        upstream_id=last.task_id if last else None,
        latency=record.duration_ms,
        generation_time=served.duration_ms if served else None,
        cancelled=record.error is not None and record.error.type == "cancelled",
        num_media_prompt=1 + len(request.get("garments") or []),
    )


def _record(row: Any, tried: list[AttemptRecord]) -> GenerationRecord:
    last = _serving(tried) or (tried[-1] if tried else None)
    return GenerationRecord(
        id=row.id,
        created_at=_iso(row.created_at),
        completed_at=_iso(row.completed_at) if row.completed_at else None,
        status=row.status,
        mode=row.mode,
        route=row.route,
        model=row.model,
        provider=last.provider if last else None,
        key_id=row.key_id,
        demo_session_id=row.demo_session_id,
        credits_reserved=int(row.credits_reserved),
        credits_charged=int(row.credits_charged),
        duration_ms=_millis(row.created_at, row.completed_at),
        attempts=tried,
        error=msgspec.convert(row.error, JobError) if row.error else None,
    )


def _attempt(row: Any) -> AttemptRecord:
    return AttemptRecord(
        position=int(row.position) + 1,
        model=row.model,
        provider=row.provider,
        status=row.status,
        task_id=row.task_id,
        error_type=row.error_type,
        started_at=_iso(row.started_at),
        finished_at=_iso(row.finished_at) if row.finished_at else None,
        duration_ms=_millis(row.started_at, row.finished_at),
        options=stored_options(row.options),
    )


def _serving(tried: list[AttemptRecord]) -> AttemptRecord | None:
    return next((a for a in tried if a.status == "succeeded"), None)


def _millis(start: datetime, end: datetime | None) -> int | None:
    if end is None:
        return None
    return max(0, int((as_utc(end) - as_utc(start)).total_seconds() * 1000))


def _iso(value: datetime) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z")
