"""Overview: the balance, what is reserved, spend over the last 30 days, recent generations."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from tryon_core.console.chart import bar_chart
from tryon_core.console.render import gateway_of, page
from tryon_core.console.rows import generation_row
from tryon_core.console.session import SignedInDep
from tryon_core.jobs.view import list_jobs
from tryon_core.reports import daily_spend

__all__ = ["ROUTES"]

PAGE = {"console_page": True}
DAYS = 30
RECENT = 5


@get("/", opt=PAGE)
async def overview(request: Request[Any, Any, Any], console: SignedInDep) -> Response[str]:
    gateway = gateway_of(request)
    async with gateway.database.reading() as conn:
        spend = await daily_spend(conn, console.account_id, days=DAYS)
        recent = await list_jobs(
            conn, gateway, account_id=console.account_id, limit=RECENT, cursor=None, status=None
        )
    return page(
        request,
        "overview.html",
        title="Overview",
        current="overview",
        account=console.account,
        chart=bar_chart(spend),
        days=DAYS,
        recent=[generation_row(job) for job in recent.data],
    )


ROUTES = [overview]
