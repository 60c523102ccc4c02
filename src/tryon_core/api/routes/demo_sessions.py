"""Demo sessions: short-lived browser tokens, made, listed and revoked with a management key.

See :mod:`tryon_core.demo_sessions` for what a token may do, and docs/demo-sessions.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath

from tryon_core import demo_sessions
from tryon_core.amounts import Credits
from tryon_core.api.deps import GatewayDep, PrincipalDep
from tryon_core.api.openapi import AUTHED, KEYED, body_operation, errors
from tryon_core.api.scopes import MANAGEMENT
from tryon_core.demo_sessions import MAX_MODELS, MAX_ORIGINS, DemoSession
from tryon_core.normalize import parse_json

__all__ = ["create_session", "revoke_session", "sessions"]


class NewDemoSession(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    allowed_origins: Annotated[list[str], msgspec.Meta(min_length=1, max_length=MAX_ORIGINS)]
    max_credits: Credits
    ttl_seconds: Annotated[int, msgspec.Meta(gt=0)] | None = None
    """Cut to ``[demo_sessions] max_ttl_seconds``; left out, that maximum."""
    models: Annotated[list[str], msgspec.Meta(min_length=1, max_length=MAX_MODELS)] | None = None


class DemoSessionCreated(msgspec.Struct, kw_only=True, omit_defaults=False):
    """Exactly what a page needs: the token, and the limits it lives under."""

    id: str
    token: str
    expires_at: datetime
    allowed_origins: list[str]
    max_credits: int
    models: list[str] | None


class DemoSessionData(msgspec.Struct, kw_only=True, omit_defaults=False):
    id: str
    status: Literal["active", "expired", "revoked"]
    allowed_origins: list[str]
    max_credits: int
    spent: int
    reserved: int
    models: list[str] | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    object: Literal["demo_session"] = "demo_session"


class DemoSessionList(msgspec.Struct, kw_only=True):
    data: list[DemoSessionData]
    object: Literal["list"] = "list"


@post(
    "/api/v1/demo-sessions",
    summary="A demo session: a token a browser page on the given origins may use (shown once).",
    description="The token runs try-ons (charged to this account, at most max_credits in all), "
    "lists models and reads its own jobs and files, from the allowed origins only, until "
    "ttl_seconds have passed (at most [demo_sessions] max_ttl_seconds) or it is revoked.",
    tags=["demo sessions"],
    status_code=201,
    responses=errors(400, 404, 413, *AUTHED),
    security=KEYED,
    opt=MANAGEMENT,
    operation_class=body_operation(
        {"application/json": NewDemoSession},
        examples={
            "application/json": {
                "demo": {
                    "allowed_origins": ["https://shop.example.com"],
                    "max_credits": 10,
                    "ttl_seconds": 900,
                }
            }
        },
    ),
)
async def create_session(
    request: Request[Any, Any, Any], gateway: GatewayDep, principal: PrincipalDep
) -> DemoSessionCreated:
    data = parse_json(await request.body(), NewDemoSession)
    limit = gateway.settings.demo_sessions.max_ttl_seconds
    async with gateway.database.transaction() as conn:
        session, token = await demo_sessions.create(
            conn,
            principal,
            allowed_origins=data.allowed_origins,
            max_credits=data.max_credits,
            ttl_seconds=data.ttl_seconds or limit,
            models=data.models,
            max_ttl_seconds=limit,
            known_models=gateway.catalog.entries.keys(),
        )
    return DemoSessionCreated(
        id=session.id,
        token=token,
        expires_at=session.expires_at,
        allowed_origins=session.allowed_origins,
        max_credits=session.max_credits,
        models=session.models,
    )


@get(
    "/api/v1/demo-sessions",
    summary="This account's demo sessions, newest first, with the credits each has used.",
    tags=["demo sessions"],
    responses=errors(*AUTHED),
    security=KEYED,
    opt=MANAGEMENT,
)
async def sessions(gateway: GatewayDep, principal: PrincipalDep) -> DemoSessionList:
    async with gateway.database.reading() as conn:
        found = await demo_sessions.list_sessions(conn, principal.account_id)
    return DemoSessionList(data=[_data(s) for s in found])


@delete(
    "/api/v1/demo-sessions/{session_id:str}",
    summary="Revoke a demo session at once: its token gets 401 and its live work ends.",
    tags=["demo sessions"],
    status_code=200,
    responses=errors(404, *AUTHED),
    security=KEYED,
    opt=MANAGEMENT,
)
async def revoke_session(
    gateway: GatewayDep, principal: PrincipalDep, session_id: FromPath[str]
) -> dict[str, DemoSessionData]:
    async with gateway.database.transaction() as conn:
        session = await demo_sessions.revoke(conn, principal.account_id, session_id)
    return {"data": _data(session)}


def _data(session: DemoSession) -> DemoSessionData:
    return DemoSessionData(
        id=session.id,
        status=session.status(),
        allowed_origins=session.allowed_origins,
        max_credits=session.max_credits,
        spent=session.spent,
        reserved=session.reserved,
        models=session.models,
        created_at=session.created_at,
        expires_at=session.expires_at,
        revoked_at=session.revoked_at,
    )
