"""API keys: create one (its secret shown once), list them with their use, revoke one."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from tryon_core.accounts import SCOPES, KeyInfo, create_key, list_keys, revoke_key
from tryon_core.console.once import OnceForms
from tryon_core.console.render import gateway_of, href, page
from tryon_core.console.security import form_fields
from tryon_core.console.session import SignedIn, SignedInDep
from tryon_core.errors import NotFound
from tryon_core.reports import spend_by_key

__all__ = ["ROUTES"]

PAGE = {"console_page": True}
MAX_NAME = 200
_NOTICES = {
    "revoked": "The key was revoked: it stops working at once.",
    "sent_twice": "This form was already sent, so no other key was made: the key it created "
    "is in the list below, and its secret was shown once, when it was made.",
}
_SENT = OnceForms()


class KeyRow(msgspec.Struct, frozen=True, kw_only=True):
    info: KeyInfo
    spent: int


async def _rows(request: Request[Any, Any, Any], console: SignedIn) -> list[KeyRow]:
    async with gateway_of(request).database.reading() as conn:
        keys = await list_keys(conn, account_id=console.account_id)
        spent = await spend_by_key(conn, console.account_id)
    rows = [KeyRow(info=k, spent=spent.get(k.id, 0)) for k in keys]
    rows.sort(key=lambda r: (r.info.revoked_at is not None, r.info.created_at), reverse=False)
    return rows


async def _page(
    request: Request[Any, Any, Any],
    console: SignedIn,
    *,
    status: int = 200,
    **context: Any,
) -> Response[str]:
    context.setdefault("created", None)
    context.setdefault("error", None)
    context.setdefault("notice", None)
    context.setdefault("form", {"name": "", "scope": "inference"})
    context.setdefault("form_id", _SENT.new())
    return page(
        request,
        "keys.html",
        status=status,
        title="API keys",
        current="keys",
        keys=await _rows(request, console),
        scopes=SCOPES,
        **context,
    )


@get("/keys", opt=PAGE)
async def keys(
    request: Request[Any, Any, Any], console: SignedInDep, done: FromQuery[str | None] = None
) -> Response[str]:
    return await _page(request, console, notice=_NOTICES.get(done or ""))


@post("/keys", opt=PAGE)
async def create(request: Request[Any, Any, Any], console: SignedInDep) -> Response[str] | Redirect:
    fields = await form_fields(request)
    name = fields.get("name", "").strip()
    scope = fields.get("scope", "inference")
    form = {"name": name, "scope": scope}
    if not name or len(name) > MAX_NAME:
        error = f"Give the key a name of 1 to {MAX_NAME} characters."
        return await _page(request, console, status=400, error=error, form=form)
    if scope not in SCOPES:
        error = "Choose the key's scope: inference or management."
        return await _page(request, console, status=400, error=error, form=form)
    if not _SENT.first_use(fields.get("form_id", "")):  # a reload or a second click
        settings = gateway_of(request).settings
        return Redirect(path=href(settings, "/keys") + "?done=sent_twice", status_code=303)
    async with gateway_of(request).database.transaction() as conn:
        info, secret = await create_key(conn, account_id=console.account_id, name=name, scope=scope)
    created = {"info": info, "scope": scope, "secret": secret}
    return await _page(request, console, status=201, created=created)


async def _own_key(request: Request[Any, Any, Any], console: SignedIn, key_id: str) -> KeyInfo:
    async with gateway_of(request).database.reading() as conn:
        found = await list_keys(conn, account_id=console.account_id)
    for info in found:
        if info.id == key_id:
            return info
    raise NotFound("This account has no such key.")


@get("/keys/{key_id:str}/revoke", opt=PAGE)
async def confirm_revoke(
    request: Request[Any, Any, Any], console: SignedInDep, key_id: FromPath[str]
) -> Response[str]:
    info = await _own_key(request, console, key_id)
    return page(
        request,
        "key_revoke.html",
        title="Revoke a key",
        current="keys",
        key=info,
    )


@post("/keys/{key_id:str}/revoke", opt=PAGE)
async def revoke(
    request: Request[Any, Any, Any], console: SignedInDep, key_id: FromPath[str]
) -> Redirect:
    async with gateway_of(request).database.transaction() as conn:
        await revoke_key(conn, key_id, account_id=console.account_id)
    settings = gateway_of(request).settings
    return Redirect(path=href(settings, "/keys") + "?done=revoked", status_code=303)


ROUTES = [keys, create, confirm_revoke, revoke]
