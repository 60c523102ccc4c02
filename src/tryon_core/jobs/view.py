"""A job as clients see it (``GET /api/v1/tryon/{id}``, WebSocket messages, webhook bodies).

Every generation is a job: async ones are submitted and polled; sync ones (native or chat)
can be looked up afterwards the same way. Reads are scoped to one account: another
account's job is exactly as absent as a job that never existed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.db.schema import files, generations
from tryon_core.fallback import Attempt
from tryon_core.gateway import Gateway
from tryon_core.ids import as_utc
from tryon_core.jobs.paging import GenerationFilter, attempts_of, page_rows
from tryon_core.model_options import stored_options

__all__ = [
    "TERMINAL",
    "JobBody",
    "JobError",
    "JobImage",
    "JobList",
    "JobProgress",
    "JobUsage",
    "list_jobs",
    "load_job",
    "render_jobs",
]

TERMINAL = frozenset({"completed", "failed"})
Status = Literal["queued", "processing", "completed", "failed"]


class JobImage(msgspec.Struct, kw_only=True):
    url: str
    content_type: str
    width: int
    height: int


class JobUsage(msgspec.Struct, kw_only=True):
    credits: int
    """Charged: 0 until the job completes (a failed job is never charged)."""
    reserved: int
    """Held for the job while it runs (the dearest candidate's price for each image)."""


class JobError(msgspec.Struct, kw_only=True):
    code: int
    type: str
    message: str


class JobProgress(msgspec.Struct, kw_only=True):
    attempt: int
    """1 for the first model tried, 2 for the first fallback, ..."""
    model: str
    provider: str
    state: str
    """``started``, ``submitted`` (the upstream accepted the task) or the upstream's own
    state when its adapter reports one (e.g. ``processing``)."""


class JobBody(msgspec.Struct, kw_only=True, omit_defaults=False):
    id: str
    status: Status
    mode: str
    model: str | None
    images: list[JobImage]
    usage: JobUsage
    error: JobError | None
    attempts: list[Attempt]
    progress: JobProgress | None
    cancel_requested: bool
    created_at: str
    updated_at: str
    completed_at: str | None
    object: Literal["tryon.job"] = "tryon.job"


class JobList(msgspec.Struct, kw_only=True):
    data: list[JobBody]
    has_more: bool
    next_cursor: str | None
    object: Literal["list"] = "list"


async def load_job(
    conn: AsyncConnection,
    gateway: Gateway,
    job_id: str,
    *,
    account_id: str | None,
    demo_session_id: str | None = None,
) -> JobBody | None:
    """The job, or None if it does not exist or (``account_id`` given) is not that account's,
    or (``demo_session_id`` given) was not opened by that demo session."""
    query = select(generations).where(generations.c.id == job_id)
    if account_id is not None:
        query = query.where(generations.c.account_id == account_id)
    if demo_session_id is not None:
        query = query.where(generations.c.demo_session_id == demo_session_id)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return (await render_jobs(conn, gateway, [row]))[0]


async def list_jobs(
    conn: AsyncConnection,
    gateway: Gateway,
    *,
    account_id: str,
    limit: int,
    cursor: str | None,
    status: str | None,
    demo_session_id: str | None = None,
    model: str | None = None,
) -> JobList:
    """The account's jobs (with ``demo_session_id``, only that demo session's), newest first;
    ``cursor`` continues after a previous page. ``status`` and ``model`` (the model that
    served) narrow the list."""
    wanted = GenerationFilter(
        account_id=account_id, demo_session_id=demo_session_id, status=status, model=model
    )
    page, next_cursor = await page_rows(conn, wanted, limit=limit, cursor=cursor)
    return JobList(
        data=await render_jobs(conn, gateway, page),
        has_more=next_cursor is not None,
        next_cursor=next_cursor,
    )


async def render_jobs(
    conn: AsyncConnection, gateway: Gateway, rows: Sequence[Any]
) -> list[JobBody]:
    """Bodies for generation rows, with their attempts and images in two queries."""
    ids = [row.id for row in rows]
    tried = {
        key: [_attempt(a) for a in found] for key, found in (await attempts_of(conn, ids)).items()
    }
    images: dict[str, list[JobImage]] = defaultdict(list)
    if ids:
        for image in await conn.execute(
            select(files)
            .where(files.c.generation_id.in_(ids), files.c.kind == "output")
            .order_by(files.c.generation_id, files.c.created_at, files.c.id)
        ):
            images[image.generation_id].append(
                JobImage(
                    url=gateway.file_url(image.id, key=image.storage_key),
                    content_type=image.content_type,
                    width=image.width,
                    height=image.height,
                )
            )
    return [_body(row, tried[row.id], images[row.id]) for row in rows]


def _body(row: Any, tried: list[Attempt], images: list[JobImage]) -> JobBody:
    held = 0 if row.settled else int(row.credits_reserved)
    return JobBody(
        id=row.id,
        status=row.status,
        mode=row.mode,
        model=row.model,
        images=images,
        usage=JobUsage(credits=int(row.credits_charged), reserved=held),
        error=msgspec.convert(row.error, JobError) if row.error else None,
        attempts=tried,
        progress=msgspec.convert(row.progress, JobProgress) if row.progress else None,
        cancel_requested=bool(row.cancel_requested),
        created_at=_iso(row.created_at),
        updated_at=_iso(row.updated_at),
        completed_at=_iso(row.completed_at) if row.completed_at else None,
    )


def _attempt(row: Any) -> Attempt:
    finished = row.finished_at
    duration = (
        int((as_utc(finished) - as_utc(row.started_at)).total_seconds() * 1000) if finished else 0
    )
    error = None
    if row.error_type:
        error = {"type": row.error_type, "message": row.error_message, "code": row.provider_code}
    return Attempt(
        model=row.model,
        provider=row.provider,
        status=row.status,
        duration_ms=duration,
        task_id=row.task_id,
        error=error,
        options=stored_options(row.options),
    )


def _iso(value: datetime) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z")
