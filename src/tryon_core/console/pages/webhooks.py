"""Webhooks: reveal and rotate the account's signing secret; the recent deliveries."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post

from tryon_core.console.render import gateway_of, page
from tryon_core.console.session import SignedIn, SignedInDep
from tryon_core.webhooks import SIGNATURE_HEADER, get_secret, list_deliveries, rotate_secret

__all__ = ["ROUTES"]

PAGE = {"console_page": True}
RECENT = 50


async def _page(
    request: Request[Any, Any, Any], console: SignedIn, **context: Any
) -> Response[str]:
    gateway = gateway_of(request)
    async with gateway.database.reading() as conn:
        deliveries = await list_deliveries(
            conn, account_id=console.account_id, job_id=None, limit=RECENT
        )
    context.setdefault("secret", None)
    context.setdefault("notice", None)
    return page(
        request,
        "webhooks.html",
        title="Webhooks",
        current="webhooks",
        deliveries=deliveries,
        signature_header=SIGNATURE_HEADER,
        **context,
    )


@get("/webhooks", opt=PAGE)
async def webhooks(request: Request[Any, Any, Any], console: SignedInDep) -> Response[str]:
    return await _page(request, console)


@post("/webhooks/reveal", opt=PAGE, status_code=200)
async def reveal(request: Request[Any, Any, Any], console: SignedInDep) -> Response[str]:
    """The secret, shown on this answer only (created on first use, as the API does)."""
    async with gateway_of(request).database.transaction() as conn:
        secret = await get_secret(conn, console.account_id)
    return await _page(request, console, secret=secret)


@get("/webhooks/rotate", opt=PAGE)
async def confirm_rotate(request: Request[Any, Any, Any], console: SignedInDep) -> Response[str]:
    return page(request, "webhook_rotate.html", title="Rotate the secret", current="webhooks")


@post("/webhooks/rotate", opt=PAGE, status_code=200)
async def rotate(request: Request[Any, Any, Any], console: SignedInDep) -> Response[str]:
    async with gateway_of(request).database.transaction() as conn:
        secret = await rotate_secret(conn, console.account_id)
    notice = "The secret was rotated: deliveries from now on are signed with the new one only."
    return await _page(request, console, secret=secret, notice=notice)


ROUTES = [webhooks, reveal, confirm_rotate, rotate]
