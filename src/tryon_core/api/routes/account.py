"""The caller's account: credits (inference keys) and API keys (management keys)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core import key_limits
from tryon_core.accounts import KeyInfo, create_key, get_account, list_keys, revoke_key
from tryon_core.api.deps import GatewayDep, PrincipalDep
from tryon_core.api.openapi import AUTHED, KEYED, body_operation, errors, link
from tryon_core.api.schemas import (
    CreditsResponse,
    KeyCreated,
    KeyData,
    KeyLimits,
    KeyList,
    NewKey,
)
from tryon_core.api.scopes import ANY_KEY, INFERENCE, MANAGEMENT
from tryon_core.ids import utcnow
from tryon_core.key_limits import Usage
from tryon_core.normalize import parse_json


@get(
    "/api/v1/credits",
    summary="This account's balance and reserved credits (inference key).",
    tags=["account"],
    responses=errors(*AUTHED),
    security=KEYED,
    opt=INFERENCE,
)
async def credits(gateway: GatewayDep, principal: PrincipalDep) -> CreditsResponse:
    async with gateway.database.reading() as conn:
        account = await get_account(conn, principal.account_id)
    return CreditsResponse(
        account_id=account.id, balance=account.balance, reserved=account.reserved
    )


@get(
    "/api/v1/key",
    summary="The key making this request, with its scope (any key).",
    tags=["account"],
    responses=errors(*AUTHED),
    security=KEYED,
    opt=ANY_KEY,
)
async def current_key(gateway: GatewayDep, principal: PrincipalDep) -> dict[str, KeyData]:
    async with gateway.database.reading() as conn:
        keys = await list_keys(conn, account_id=principal.account_id)
        (data,) = await _keys(conn, [k for k in keys if k.id == principal.key_id])
    return {"data": data}


@get(
    "/api/v1/keys",
    summary="Every key of this account (management key).",
    tags=["account"],
    responses=errors(*AUTHED),
    security=KEYED,
    opt=MANAGEMENT,
)
async def keys(gateway: GatewayDep, principal: PrincipalDep) -> KeyList:
    async with gateway.database.reading() as conn:
        found = await list_keys(conn, account_id=principal.account_id)
        data = await _keys(conn, found)
    return KeyList(data=data)


@post(
    "/api/v1/keys",
    summary="Another key for this account, of either scope (shown once; management key).",
    tags=["account"],
    responses=errors(400, 413, *AUTHED),
    security=KEYED,
    opt=MANAGEMENT,
    operation_class=body_operation(
        {"application/json": NewKey},
        examples={"application/json": {"ci": {"name": "ci", "limit": 500, "limit_reset": "daily"}}},
        links={
            201: {
                "RevokeKey": link(
                    "DELETE", "/api/v1/keys/{key_id}", key_id="$response.body#/data/id"
                )
            }
        },
    ),
)
async def new_key(
    request: Request[Any, Any, Any], gateway: GatewayDep, principal: PrincipalDep
) -> KeyCreated:
    body = await request.body()
    wanted = parse_json(body, NewKey) if body.strip() else NewKey()  # the body may be left out
    async with gateway.database.transaction() as conn:
        info, secret = await create_key(
            conn, account_id=principal.account_id, name=wanted.name, scope=wanted.scope
        )
        limits = {
            field: getattr(wanted, field)
            for field in key_limits.LIMIT_FIELDS
            if getattr(wanted, field) != getattr(NewKey(), field)
        }
        info = await key_limits.set_limits(conn, info.id, limits)
        (created,) = await _keys(conn, [info])
    return KeyCreated(data=created, key=secret)


@patch(
    "/api/v1/keys/{key_id:str}",
    summary="Change a key's limits: credit limit and its reset, requests per minute, "
    "concurrent generations (management key).",
    description="A field left out is kept; null clears it (no credit limit; the `[limits]` "
    "default for the other two). A new limit or reset counts the current period afresh.",
    tags=["account"],
    responses=errors(400, 404, 413, *AUTHED),
    security=KEYED,
    opt=MANAGEMENT,
    operation_class=body_operation(
        {"application/json": KeyLimits},
        examples={"application/json": {"monthly": {"limit": 5000, "limit_reset": "monthly"}}},
    ),
)
async def change_key(
    request: Request[Any, Any, Any],
    gateway: GatewayDep,
    principal: PrincipalDep,
    key_id: FromPath[str],
) -> dict[str, KeyData]:
    wanted = parse_json(await request.body(), KeyLimits)
    changes = {
        field: value
        for field in key_limits.LIMIT_FIELDS
        if (value := getattr(wanted, field)) is not msgspec.UNSET
    }
    async with gateway.database.transaction() as conn:
        info = await key_limits.set_limits(conn, key_id, changes, account_id=principal.account_id)
        (data,) = await _keys(conn, [info])
    return {"data": data}


@delete(
    "/api/v1/keys/{key_id:str}",
    summary="Revoke a key of this account at once (management key).",
    tags=["account"],
    status_code=200,
    responses=errors(404, *AUTHED),
    security=KEYED,
    opt=MANAGEMENT,
)
async def remove_key(
    gateway: GatewayDep, principal: PrincipalDep, key_id: FromPath[str]
) -> dict[str, KeyData]:
    async with gateway.database.transaction() as conn:
        info = await revoke_key(conn, key_id, account_id=principal.account_id)
        (data,) = await _keys(conn, [info])
    return {"data": data}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def _keys(conn: AsyncConnection, found: list[KeyInfo]) -> list[KeyData]:
    """Keys as the API shows them, with their usage and what is left of their limits now."""
    now = utcnow()
    usage = await key_limits.key_usage(conn, [k.id for k in found], at=now)
    return [_key(k, usage, now) for k in found]


def _key(info: KeyInfo, usage: Mapping[str, Usage], now: datetime) -> KeyData:
    """A key as the API shows it, with its usage (:func:`tryon_core.key_limits.key_usage`)."""
    used = usage.get(info.id, Usage(0, 0, 0, 0))
    limit = key_limits.standing(info, at=now)
    return KeyData(
        id=info.id,
        name=info.name,
        prefix=info.prefix,
        account_id=info.account_id,
        created_at=info.created_at.isoformat(),
        last_used_at=_iso(info.last_used_at),
        revoked_at=_iso(info.revoked_at),
        scope="management" if info.scope == "management" else "inference",
        credits_spent=used.total,
        label=f"{info.prefix}…",
        limit=limit.limit,
        limit_remaining=limit.remaining,
        limit_reset=limit.reset,  # type: ignore[arg-type]  # the database's CHECK keeps it one
        usage=used.total,
        usage_daily=used.daily,
        usage_weekly=used.weekly,
        usage_monthly=used.monthly,
        requests_per_minute=info.requests_per_minute,
        concurrent_generations=info.concurrent_generations,
    )
