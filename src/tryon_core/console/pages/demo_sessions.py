"""Demo sessions: create one (its token shown once), list them with what they used, revoke
one. What a token may do is in docs/demo-sessions.md; the console makes them exactly as
``POST /api/v1/demo-sessions`` does (:func:`tryon_core.demo_sessions.create`)."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from tryon_core import demo_sessions
from tryon_core.amounts import MAX_CREDITS
from tryon_core.console.render import gateway_of, href, page
from tryon_core.console.security import form_fields, form_values
from tryon_core.console.session import SignedIn, SignedInDep
from tryon_core.errors import InvalidRequest, NotFound

__all__ = ["ROUTES"]

PAGE = {"console_page": True}
_NOTICES = {"revoked": "The demo session was revoked: its token stops working at once."}
_SEPARATORS = re.compile(r"[\s,]+")


async def _page(
    request: Request[Any, Any, Any],
    console: SignedIn,
    *,
    status: int = 200,
    **context: Any,
) -> Response[str]:
    gateway = gateway_of(request)
    async with gateway.database.reading() as conn:
        found = await demo_sessions.list_sessions(conn, console.account_id)
    max_minutes = max(1, gateway.settings.demo_sessions.max_ttl_seconds // 60)
    context.setdefault("created", None)
    context.setdefault("error", None)
    context.setdefault("notice", None)
    context.setdefault(
        "form",
        {"allowed_origins": "", "max_credits": "10", "ttl_minutes": str(max_minutes), "models": []},
    )
    return page(
        request,
        "demo_sessions.html",
        status=status,
        title="Demo sessions",
        current="demo-sessions",
        sessions=found,
        models=sorted(gateway.catalog.entries),
        max_minutes=max_minutes,
        max_credits=MAX_CREDITS,
        **context,
    )


@get("/demo-sessions", opt=PAGE)
async def sessions(
    request: Request[Any, Any, Any], console: SignedInDep, done: FromQuery[str | None] = None
) -> Response[str]:
    return await _page(request, console, notice=_NOTICES.get(done or ""))


@post("/demo-sessions", opt=PAGE)
async def create(request: Request[Any, Any, Any], console: SignedInDep) -> Response[str]:
    gateway = gateway_of(request)
    fields = await form_fields(request)
    chosen = await form_values(request, "models")
    given_origins = fields.get("allowed_origins", "")
    given_credits = fields.get("max_credits", "").strip()
    given_minutes = fields.get("ttl_minutes", "").strip()
    form: dict[str, Any] = {
        "allowed_origins": given_origins,
        "max_credits": given_credits,
        "ttl_minutes": given_minutes,
        "models": chosen,
    }
    origins = [o for o in _SEPARATORS.split(given_origins) if o]
    limit = gateway.settings.demo_sessions.max_ttl_seconds
    try:
        if not origins:
            raise InvalidRequest("Give at least one origin, such as https://shop.example.com.")
        max_credits = _whole(given_credits, "Credit cap")
        ttl_seconds = _whole(given_minutes, "Lifetime") * 60
        async with gateway.database.transaction() as conn:
            session, token = await demo_sessions.create(
                conn,
                console.principal,
                allowed_origins=origins,
                max_credits=max_credits,
                ttl_seconds=ttl_seconds,
                models=chosen or None,
                max_ttl_seconds=limit,
                known_models=gateway.catalog.entries.keys(),
            )
    except (InvalidRequest, NotFound) as exc:
        return await _page(request, console, status=400, error=exc.message, form=form)
    created = {"session": session, "token": token}
    return await _page(request, console, status=201, created=created)


def _whole(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 15:
        raise InvalidRequest(f"{name}: a whole number.")
    return int(text)


@get("/demo-sessions/{session_id:str}/revoke", opt=PAGE)
async def confirm_revoke(
    request: Request[Any, Any, Any], console: SignedInDep, session_id: FromPath[str]
) -> Response[str]:
    async with gateway_of(request).database.reading() as conn:
        session = await demo_sessions.get_session(conn, console.account_id, session_id)
    return page(
        request,
        "demo_session_revoke.html",
        title="Revoke a demo session",
        current="demo-sessions",
        session=session,
    )


@post("/demo-sessions/{session_id:str}/revoke", opt=PAGE)
async def revoke(
    request: Request[Any, Any, Any], console: SignedInDep, session_id: FromPath[str]
) -> Redirect:
    async with gateway_of(request).database.transaction() as conn:
        await demo_sessions.revoke(conn, console.account_id, session_id)
    settings = gateway_of(request).settings
    return Redirect(path=href(settings, "/demo-sessions") + "?done=revoked", status_code=303)


ROUTES = [sessions, create, confirm_revoke, revoke]
