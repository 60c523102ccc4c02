"""API keys: create one (its secret shown once, its limits set if wanted), list them with
their use and limits, change a key's limits, revoke one."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from tryon_core import key_limits
from tryon_core.accounts import SCOPES, KeyInfo, create_key, get_key, list_keys, revoke_key
from tryon_core.console.limits_form import (
    LIMIT_LABELS,
    NO_LIMITS,
    blank_form,
    form_of,
    limit_changes,
    limit_summary,
    limits_of,
    rate_summary,
)
from tryon_core.console.once import OnceForms
from tryon_core.console.render import gateway_of, href, page
from tryon_core.console.security import form_fields
from tryon_core.console.session import SignedIn, SignedInDep
from tryon_core.errors import InvalidRequest, NotFound
from tryon_core.ids import utcnow
from tryon_core.limit_periods import LIMIT_RESETS
from tryon_core.reports import spend_by_key

__all__ = ["ROUTES"]

PAGE = {"console_page": True}
MAX_NAME = 200
_NOTICES = {
    "revoked": "The key was revoked: it stops working at once.",
    "limits": "The key's limits were saved: they apply from its next request.",
    "sent_twice": "This form was already sent, so no other key was made: the key it created "
    "is in the list below, and its secret was shown once, when it was made.",
}
_SENT = OnceForms()
_LIMIT_CONTEXT: dict[str, Any] = {"limit_resets": LIMIT_RESETS, "limit_labels": LIMIT_LABELS}
_REVOKED = "This key was revoked, so its limits can no longer be changed."


class KeyRow(msgspec.Struct, frozen=True, kw_only=True):
    info: KeyInfo
    spent: int
    spent_this_month: int
    """Charged for the key's generations made this UTC month."""
    limit: str
    """Its credit limit now: "120 of 500 left · monthly", "no limit"."""
    rates: str
    """Its own rate limits: "4 at once · 60/min", "defaults"."""


async def _rows(request: Request[Any, Any, Any], console: SignedIn) -> list[KeyRow]:
    now = utcnow()
    async with gateway_of(request).database.reading() as conn:
        keys = await list_keys(conn, account_id=console.account_id)
        spent = await spend_by_key(conn, console.account_id)
        usage = await key_limits.key_usage(conn, [k.id for k in keys], at=now)
    rows = [
        KeyRow(
            info=k,
            spent=spent.get(k.id, 0),
            spent_this_month=usage[k.id].monthly,
            limit=limit_summary(k, at=now),
            rates=rate_summary(k),
        )
        for k in keys
    ]
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
    context.setdefault("form", {"name": "", "scope": "inference", **blank_form()})
    context.setdefault("form_id", _SENT.new())
    return page(
        request,
        "keys.html",
        status=status,
        title="API keys",
        current="keys",
        keys=await _rows(request, console),
        scopes=SCOPES,
        **_LIMIT_CONTEXT,
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
    form = {"name": name, "scope": scope, **blank_form()}
    if not name or len(name) > MAX_NAME:
        error = f"Give the key a name of 1 to {MAX_NAME} characters."
        return await _page(request, console, status=400, error=error, form=form)
    if scope not in SCOPES:
        error = "Choose the key's scope: inference or management."
        return await _page(request, console, status=400, error=error, form=form)
    try:
        given, limits = limit_changes(fields)
    except InvalidRequest as exc:
        form.update({field: fields.get(field, "") for field in LIMIT_LABELS})
        return await _page(request, console, status=400, error=exc.message, form=form)
    form.update(given)
    if not _SENT.first_use(fields.get("form_id", "")):  # a reload or a second click
        settings = gateway_of(request).settings
        return Redirect(path=href(settings, "/keys") + "?done=sent_twice", status_code=303)
    wanted = {field: value for field, value in limits.items() if value != NO_LIMITS[field]}
    async with gateway_of(request).database.transaction() as conn:
        info, secret = await create_key(conn, account_id=console.account_id, name=name, scope=scope)
        if wanted:
            info = await key_limits.set_limits(conn, info.id, wanted)
    created = {"info": info, "scope": scope, "secret": secret}
    return await _page(request, console, status=201, created=created)


async def _own_key(request: Request[Any, Any, Any], console: SignedIn, key_id: str) -> KeyInfo:
    async with gateway_of(request).database.reading() as conn:
        try:
            return await get_key(conn, key_id, account_id=console.account_id)
        except NotFound:
            raise NotFound("This account has no such key.") from None


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


def _limits_page(
    request: Request[Any, Any, Any],
    info: KeyInfo,
    *,
    status: int = 200,
    form: dict[str, str] | None = None,
    error: str | None = None,
) -> Response[str]:
    return page(
        request,
        "key_limits.html",
        status=status,
        title="Limits of a key",
        current="keys",
        key=info,
        limit=limit_summary(info),
        rates=rate_summary(info),
        form=form if form is not None else form_of(info),
        error=error,
        **_LIMIT_CONTEXT,
    )


@get("/keys/{key_id:str}/limits", opt=PAGE)
async def edit_limits(
    request: Request[Any, Any, Any], console: SignedInDep, key_id: FromPath[str]
) -> Response[str]:
    return _limits_page(request, await _own_key(request, console, key_id))


@post("/keys/{key_id:str}/limits", opt=PAGE)
async def change_limits(
    request: Request[Any, Any, Any], console: SignedInDep, key_id: FromPath[str]
) -> Response[str] | Redirect:
    fields = await form_fields(request)
    gateway = gateway_of(request)
    info = await _own_key(request, console, key_id)
    if info.revoked_at is not None:
        return _limits_page(request, info, status=409, error=_REVOKED)
    try:
        _, wanted = limit_changes(fields)
    except InvalidRequest as exc:
        form = {field: fields.get(field, "") for field in LIMIT_LABELS}
        return _limits_page(request, info, status=400, form=form, error=exc.message)
    async with gateway.database.transaction() as conn:
        info = await get_key(conn, key_id, account_id=console.account_id)
        now = limits_of(info)
        changes = {field: value for field, value in wanted.items() if value != now[field]}
        if info.revoked_at is None:  # else revoked meanwhile
            # only what changed: an unchanged credit limit keeps its count
            await key_limits.set_limits(conn, key_id, changes, account_id=console.account_id)
    if info.revoked_at is not None:
        return _limits_page(request, info, status=409, error=_REVOKED)
    return Redirect(path=href(gateway.settings, "/keys") + "?done=limits", status_code=303)


ROUTES = [keys, create, confirm_revoke, revoke, edit_limits, change_limits]
