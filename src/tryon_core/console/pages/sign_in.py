"""Signing in (a management key pasted, or a one-time link) and out.

Both ways of signing in count against the client address's attempts
(``[console] sign_in_attempts`` per ``sign_in_window_seconds``); past them, 429. A successful
sign-in opens a new session (a new cookie, so none planted before it is ever trusted) and
redirects to the page asked for.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect

from tryon_core.console import compat
from tryon_core.console.failures import safe_next
from tryon_core.console.render import base_path, gateway_of, href, page
from tryon_core.console.security import SESSION_COOKIE, form_fields, make_cookie
from tryon_core.console.throttle import SignInThrottle
from tryon_core.console_sessions import end_session, start_session, use_link
from tryon_core.errors import AuthenticationFailed

__all__ = ["ROUTES"]

PAGE = {"console_page": True}
ThrottleDep = NamedDependency[SignInThrottle]

_NOTICES = {"signed-out": "You are signed out."}
_LINK_REFUSALS = {
    "unknown": "This sign-in link is not valid.",
    "used": "This sign-in link was already used; each link signs in once.",
    "expired": "This sign-in link has expired.",
}
_NO_KEY = "Paste a management key: it starts with tryon_."
_BAD_KEY = "This API key is not valid, or it was revoked."
_INFERENCE_KEY = (
    "This is an inference key: it runs try-ons but cannot manage the account. Sign in with "
    "a management key (tryon keys create --scope management), or ask the server's operator "
    "for a sign-in link."
)


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


def _too_many(wait: float) -> tuple[dict[str, str], str]:
    """The Retry-After header and the message of a sign-in past the client's attempts."""
    seconds = int(wait)
    message = f"Too many sign-in attempts from your address; try again in {seconds} seconds."
    return {"Retry-After": str(seconds)}, message


def _form(
    request: Request[Any, Any, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    next_path: str = "/",
    error: str | None = None,
    notice: str | None = None,
) -> Response[str]:
    return page(
        request,
        "sign_in.html",
        status=status,
        headers=headers,
        title="Sign in",
        link_minutes=gateway_of(request).settings.console.link_minutes,
        next=next_path,
        error=error,
        notice=notice,
    )


async def _signed_in(
    request: Request[Any, Any, Any], *, account_id: str, key_id: str | None, next_path: str
) -> Response[Any]:
    gateway = gateway_of(request)
    settings = gateway.settings
    ttl = timedelta(hours=settings.console.session_hours)
    async with gateway.database.transaction() as conn:
        _, token = await start_session(conn, account_id=account_id, key_id=key_id, ttl=ttl)
    cookie = make_cookie(
        SESSION_COOKIE,
        token,
        request=request,
        settings=settings,
        path=base_path(settings) or "/",
        max_age=int(ttl.total_seconds()),
    )
    return Redirect(path=href(settings, next_path), status_code=303, cookies=[cookie])


@get("/sign-in", opt=PAGE)
async def sign_in_form(
    request: Request[Any, Any, Any],
    next: FromQuery[str | None] = None,
    done: FromQuery[str | None] = None,
) -> Response[str]:
    return _form(request, next_path=safe_next(next), notice=_NOTICES.get(done or ""))


@post("/sign-in", opt=PAGE)
async def sign_in(request: Request[Any, Any, Any], throttle: ThrottleDep) -> Response[Any]:
    fields = await form_fields(request)
    next_path = safe_next(fields.get("next"))
    wait = throttle.attempt(_client(request))
    if wait is not None:
        headers, message = _too_many(wait)
        return _form(request, status=429, headers=headers, next_path=next_path, error=message)
    key = fields.get("api_key", "").strip()
    if not key:
        return _form(request, status=400, next_path=next_path, error=_NO_KEY)
    try:
        principal = await gateway_of(request).authenticate(f"Bearer {key}")
    except AuthenticationFailed:
        return _form(request, status=401, next_path=next_path, error=_BAD_KEY)
    if principal.key_id is None or "management" not in compat.principal_scopes(principal):
        return _form(request, status=403, next_path=next_path, error=_INFERENCE_KEY)
    return await _signed_in(
        request, account_id=principal.account_id, key_id=principal.key_id, next_path=next_path
    )


@get("/sign-in/link", opt=PAGE)
async def link_form(
    request: Request[Any, Any, Any], token: FromQuery[str | None] = None
) -> Response[str]:
    error = None if token else _LINK_REFUSALS["unknown"]
    return page(request, "sign_in_link.html", title="Sign in", token=token or "", error=error)


@post("/sign-in/link", opt=PAGE)
async def sign_in_with_link(
    request: Request[Any, Any, Any], throttle: ThrottleDep
) -> Response[Any]:
    fields = await form_fields(request)
    wait = throttle.attempt(_client(request))
    if wait is not None:
        headers, message = _too_many(wait)
        return page(
            request,
            "sign_in_link.html",
            status=429,
            headers=headers,
            title="Sign in",
            token="",
            error=message,
        )
    gateway = gateway_of(request)
    async with gateway.database.transaction() as conn:
        used = await use_link(conn, fields.get("token", ""))
    if not isinstance(used, str):
        return page(
            request,
            "sign_in_link.html",
            status=401,
            title="Sign in",
            token="",
            error=_LINK_REFUSALS[used.reason],
        )
    return await _signed_in(request, account_id=used, key_id=None, next_path="/")


@post("/sign-out", opt=PAGE)
async def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
    gateway = gateway_of(request)
    settings = gateway.settings
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with gateway.database.transaction() as conn:
            await end_session(conn, token)
    gone = make_cookie(
        SESSION_COOKIE,
        "",
        request=request,
        settings=settings,
        path=base_path(settings) or "/",
        max_age=0,
    )
    target = href(settings, "/sign-in") + "?done=signed-out"
    return Redirect(path=target, status_code=303, cookies=[gone])


ROUTES = [sign_in_form, sign_in, link_form, sign_in_with_link, sign_out]
