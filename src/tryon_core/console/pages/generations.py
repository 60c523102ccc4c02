"""Generations: the account's, newest first, filtered by status and model; one in detail with
its attempts; and the filtered list as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any, Literal

from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from tryon_core.console.render import gateway_of, page
from tryon_core.console.rows import generation_row
from tryon_core.console.session import SignedInDep
from tryon_core.errors import NotFound
from tryon_core.gateway import Gateway
from tryon_core.jobs.view import list_jobs, load_job

__all__ = ["ROUTES"]

PAGE = {"console_page": True}
STATUSES = ("queued", "processing", "completed", "failed")
Status = Literal["queued", "processing", "completed", "failed", ""]
PAGE_SIZE = 25
_CSV_BATCH = 100
CSV_COLUMNS = (
    "id",
    "created_at",
    "completed_at",
    "status",
    "mode",
    "model",
    "credits",
    "duration_ms",
    "attempts",
    "error_type",
    "error_message",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _filters(status: str | None, model: str | None) -> tuple[str | None, str | None]:
    return (status or None), (model or None)


@get("/generations", opt=PAGE)
async def generations(
    request: Request[Any, Any, Any],
    console: SignedInDep,
    status: FromQuery[Status] = "",
    model: FromQuery[str] = "",
    cursor: FromQuery[str | None] = None,
) -> Response[str]:
    gateway = gateway_of(request)
    wanted_status, wanted_model = _filters(status, model)
    async with gateway.database.reading() as conn:
        found = await list_jobs(
            conn,
            gateway,
            account_id=console.account_id,
            limit=PAGE_SIZE,
            cursor=cursor,
            status=wanted_status,
            model=wanted_model,
        )
    return page(
        request,
        "generations.html",
        title="Generations",
        current="generations",
        rows=[generation_row(job) for job in found.data],
        next_cursor=found.next_cursor,
        first_page=cursor is None,
        statuses=STATUSES,
        models=sorted(gateway.catalog.entries),
        status_filter=status,
        model_filter=model,
    )


@get("/generations.csv", opt=PAGE)
async def export(
    request: Request[Any, Any, Any],
    console: SignedInDep,
    status: FromQuery[Status] = "",
    model: FromQuery[str] = "",
) -> Stream:
    """Every generation the filters keep, newest first, as CSV (read in batches)."""
    gateway = gateway_of(request)
    wanted_status, wanted_model = _filters(status, model)
    rows = _csv_rows(gateway, console.account_id, wanted_status, wanted_model)
    return Stream(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="generations.csv"',
            "Cache-Control": "no-store",
        },
    )


async def _csv_rows(
    gateway: Gateway, account_id: str, status: str | None, model: str | None
) -> AsyncIterator[bytes]:
    yield csv_record(CSV_COLUMNS)
    cursor: str | None = None
    while True:
        async with gateway.database.reading() as conn:
            found = await list_jobs(
                conn,
                gateway,
                account_id=account_id,
                limit=_CSV_BATCH,
                cursor=cursor,
                status=status,
                model=model,
            )
        for job in found.data:
            row = generation_row(job)
            yield csv_record(
                (
                    job.id,
                    job.created_at,
                    job.completed_at or "",
                    job.status,
                    job.mode,
                    job.model or "",
                    str(row.credits),
                    "" if row.duration_ms is None else str(row.duration_ms),
                    str(row.attempts),
                    job.error.type if job.error else "",
                    job.error.message if job.error else "",
                )
            )
        if not found.has_more:
            return
        cursor = found.next_cursor


def csv_record(cells: tuple[str, ...]) -> bytes:
    """One CSV record; a cell a spreadsheet would run as a formula is quoted with ``'``."""
    out = io.StringIO()
    csv.writer(out).writerow(["'" + c if c.startswith(_FORMULA_STARTS) else c for c in cells])
    return out.getvalue().encode("utf-8")


@get("/generations/{job_id:str}", opt=PAGE)
async def generation(
    request: Request[Any, Any, Any], console: SignedInDep, job_id: FromPath[str]
) -> Response[str]:
    gateway = gateway_of(request)
    async with gateway.database.reading() as conn:
        job = await load_job(conn, gateway, job_id, account_id=console.account_id)
    if job is None:
        raise NotFound("This account has no such generation.")
    return page(
        request,
        "generation.html",
        title=f"Generation {job.id}",
        current="generations",
        job=job,
        row=generation_row(job),
    )


ROUTES = [generations, export, generation]
