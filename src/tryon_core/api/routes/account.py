"""The caller's account: credits (inference keys) and API keys (management keys)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from litestar import delete, get, post
from litestar.params import FromPath, JSONBody

from tryon_core.accounts import KeyInfo, create_key, get_account, list_keys, revoke_key
from tryon_core.api.deps import GatewayDep, PrincipalDep
from tryon_core.api.openapi import AUTHED, KEYED, body_operation, errors, link
from tryon_core.api.schemas import CreditsResponse, KeyCreated, KeyData, KeyList, NewKey
from tryon_core.api.scopes import ANY_KEY, INFERENCE, MANAGEMENT
from tryon_core.reports import spend_by_key


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
        spent = await spend_by_key(conn, principal.account_id)
    return {"data": next(_key(k, spent) for k in keys if k.id == principal.key_id)}


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
        spent = await spend_by_key(conn, principal.account_id)
    return KeyList(data=[_key(k, spent) for k in found])


@post(
    "/api/v1/keys",
    summary="Another key for this account, of either scope (shown once; management key).",
    tags=["account"],
    responses=errors(400, 413, *AUTHED),
    security=KEYED,
    opt=MANAGEMENT,
    operation_class=body_operation(
        {},
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
    gateway: GatewayDep, principal: PrincipalDep, data: JSONBody[NewKey | None] = None
) -> KeyCreated:
    wanted = data or NewKey()
    async with gateway.database.transaction() as conn:
        info, secret = await create_key(
            conn, account_id=principal.account_id, name=wanted.name, scope=wanted.scope
        )
    return KeyCreated(data=_key(info, {}), key=secret)


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
        spent = await spend_by_key(conn, principal.account_id)
    return {"data": _key(info, spent)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _key(info: KeyInfo, spent: Mapping[str | None, int]) -> KeyData:
    """A key as the API shows it; ``spent``: credits charged by key (reports.spend_by_key)."""
    return KeyData(
        id=info.id,
        name=info.name,
        prefix=info.prefix,
        account_id=info.account_id,
        created_at=info.created_at.isoformat(),
        last_used_at=_iso(info.last_used_at),
        revoked_at=_iso(info.revoked_at),
        scope="management" if info.scope == "management" else "inference",
        credits_spent=spent.get(info.id, 0),
    )
