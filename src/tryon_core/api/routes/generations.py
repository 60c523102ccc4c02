"""Usage: the account's generations with what each cost, and one by id as OpenRouter's
``GET /api/v1/generation`` shows it.

A management key (or the console) sees every generation of its account; an inference key only
those it opened itself. Another account's generation is exactly as absent as one that never
existed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from litestar import get
from litestar.params import FromQuery, QueryParameter

from tryon_core.accounts import Principal
from tryon_core.api.deps import GatewayDep, PrincipalDep
from tryon_core.api.openapi import AUTHED, KEYED, errors
from tryon_core.api.scopes import ANY_KEY
from tryon_core.errors import InvalidRequest, NotFound
from tryon_core.jobs.paging import GenerationFilter, page_rows
from tryon_core.jobs.records import GenerationDetail, GenerationRecord, load_detail, render_records

__all__ = ["generation", "list_generations", "parse_instant"]

_UNIX_SECONDS = re.compile(r"\d{1,12}(\.\d{1,9})?")


class GenerationPage(msgspec.Struct, kw_only=True):
    data: list[GenerationRecord]
    next_cursor: str | None
    """Pass it as ``cursor`` for the next page; None on the last."""
    object: Literal["list"] = "list"


@get(
    "/api/v1/generations",
    summary="This account's generations with their cost and attempts, newest first "
    "(management key: every key's; inference key: its own).",
    tags=["usage"],
    responses=errors(400, *AUTHED),
    security=KEYED,
    opt=ANY_KEY,
)
async def list_generations(
    gateway: GatewayDep,
    principal: PrincipalDep,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    cursor: FromQuery[str | None] = None,
    key_id: FromQuery[str | None] = None,
    model: FromQuery[str | None] = None,
    status: FromQuery[Literal["queued", "processing", "completed", "failed"] | None] = None,
    created_after: FromQuery[str | None] = None,
    created_before: FromQuery[str | None] = None,
) -> GenerationPage:
    wanted = GenerationFilter(
        account_id=principal.account_id,
        key_id=key_id,
        status=status,
        model=model,
        created_after=parse_instant(created_after, "created_after"),
        created_before=parse_instant(created_before, "created_before"),
    )
    own = _only_key(principal)
    if own is not None:
        if key_id is not None and key_id != own:
            return GenerationPage(data=[], next_cursor=None)  # another key's: not for it to see
        wanted = msgspec.structs.replace(wanted, key_id=own)
    async with gateway.database.reading() as conn:
        rows, next_cursor = await page_rows(conn, wanted, limit=limit, cursor=cursor)
        return GenerationPage(data=await render_records(conn, rows), next_cursor=next_cursor)


@get(
    "/api/v1/generation",
    summary="One generation by id, with OpenRouter's field names (total_cost, provider_name, "
    "latency, ...) besides the gateway's own.",
    tags=["usage"],
    responses=errors(400, 404, *AUTHED),
    security=KEYED,
    opt=ANY_KEY,
)
async def generation(
    gateway: GatewayDep,
    principal: PrincipalDep,
    generation_id: Annotated[str | None, QueryParameter(name="id")] = None,
) -> dict[str, GenerationDetail]:
    if not generation_id:
        raise InvalidRequest("Name the generation: ?id=gen_...", param="id")
    async with gateway.database.reading() as conn:
        found = await load_detail(
            conn, generation_id, account_id=principal.account_id, key_id=_only_key(principal)
        )
    if found is None:
        raise NotFound("This account has no such generation.", param="id")
    return {"data": found}


def _only_key(principal: Principal) -> str | None:
    """The one key whose generations ``principal`` may see; None: every key of its account."""
    if "management" in principal.scopes:
        return None
    return principal.key_id or ""  # no key: no generation is its own


def parse_instant(text: str | None, param: str) -> datetime | None:
    """An instant from ISO 8601 with an offset (``Z`` included) or unix seconds; 400 else."""
    if text is None:
        return None
    try:
        if _UNIX_SECONDS.fullmatch(text):
            return datetime.fromtimestamp(float(text), UTC)
        value = datetime.fromisoformat(text)
        if value.utcoffset() is not None:
            return value.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise InvalidRequest(
        f"{param} takes an ISO 8601 time with its offset (2026-01-31T12:00:00Z) or unix seconds.",
        param=param,
    )
