"""The account's webhook signing secret, and what happened to its deliveries (management key)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import get, post
from litestar.params import FromQuery, QueryParameter

from tryon_core.api.deps import GatewayDep, PrincipalDep
from tryon_core.api.openapi import AUTHED, KEYED, errors
from tryon_core.api.scopes import MANAGEMENT
from tryon_core.ids import as_utc
from tryon_core.webhooks import Delivery, WebhookSecret, get_secret, list_deliveries, rotate_secret


class SecretOut(msgspec.Struct, kw_only=True):
    secret: str
    created_at: datetime
    object: Literal["webhook_secret"] = "webhook_secret"


class DeliveryList(msgspec.Struct, kw_only=True):
    data: list[Delivery]
    object: Literal["list"] = "list"


@get(
    "/api/v1/webhooks/secret",
    summary="The secret that signs this account's webhooks (created on first read).",
    tags=["webhooks"],
    responses=errors(*AUTHED),
    security=KEYED,
    opt=MANAGEMENT,
)
async def webhook_secret(gateway: GatewayDep, principal: PrincipalDep) -> SecretOut:
    async with gateway.database.transaction() as conn:
        return _secret(await get_secret(conn, principal.account_id))


@post(
    "/api/v1/webhooks/secret/rotate",
    summary="Replace the webhook secret; the old one signs nothing from now on.",
    tags=["webhooks"],
    status_code=200,
    responses=errors(*AUTHED),
    security=KEYED,
    opt=MANAGEMENT,
)
async def rotate_webhook_secret(gateway: GatewayDep, principal: PrincipalDep) -> SecretOut:
    async with gateway.database.transaction() as conn:
        return _secret(await rotate_secret(conn, principal.account_id))


@get(
    "/api/v1/webhooks/deliveries",
    summary="This account's webhook deliveries, newest first.",
    tags=["webhooks"],
    responses=errors(400, *AUTHED),
    security=KEYED,
    opt=MANAGEMENT,
)
async def webhook_deliveries(
    gateway: GatewayDep,
    principal: PrincipalDep,
    job_id: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 100,
) -> DeliveryList:
    async with gateway.database.reading() as conn:
        found = await list_deliveries(
            conn, account_id=principal.account_id, job_id=job_id, limit=limit
        )
    return DeliveryList(data=found)


def _secret(secret: WebhookSecret) -> SecretOut:
    return SecretOut(secret=secret.secret, created_at=as_utc(secret.created_at))
