"""The console's browser-facing defences: cookies, CSRF tokens and response headers.

- The session cookie holds a random session token (never a key): HttpOnly, SameSite=Lax,
  Secure when the request came over https or ``[server] public_url`` is https.
- Every unsafe request carries a CSRF token, in the form field ``csrf_token`` or the header
  ``X-CSRF-Token``: the SHA-256 of the session cookie (before sign-in, of a random visitor
  cookie) under a fixed label. A page of another site can neither read the cookie nor the
  token, so it cannot forge either; :func:`csrf_guard` refuses a request without it (403).
- Every console response carries a Content-Security-Policy that allows scripts, styles,
  images and connections from the gateway's own origin only (no inline script or style),
  and forbids framing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any
from urllib.parse import parse_qsl

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.handlers import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from tryon_core.config import Settings
from tryon_core.errors import ClientError, InvalidRequest, PayloadTooLarge

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "VISITOR_COOKIE",
    "CsrfRefused",
    "SecurityHeaders",
    "csrf_guard",
    "csrf_token",
    "form_fields",
    "form_values",
    "is_secure",
    "make_cookie",
]

SESSION_COOKIE = "tryon_console"
VISITOR_COOKIE = "tryon_console_visitor"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_CSRF_LABEL = b"tryon-console-csrf:"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_FIELDS = 50
MAX_FORM_BYTES = 64 * 1024
"""The largest urlencoded form a console page takes (its forms are a few short fields)."""
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


class CsrfRefused(ClientError):
    status = 403
    type = "csrf_failed"


def csrf_token(cookie_value: str) -> str:
    return hashlib.sha256(_CSRF_LABEL + cookie_value.encode("utf-8")).hexdigest()


def csrf_cookie_value(request: Request[Any, Any, Any]) -> str | None:
    """The cookie the page's CSRF token derives from: the session's, else the visitor's."""
    return request.cookies.get(SESSION_COOKIE) or request.cookies.get(VISITOR_COOKIE)


def is_secure(request: Request[Any, Any, Any], settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.server.base_url.startswith("https://")


def make_cookie(
    name: str,
    value: str,
    *,
    request: Request[Any, Any, Any],
    settings: Settings,
    path: str,
    max_age: int | None,
) -> Cookie:
    """A console cookie: HttpOnly, SameSite=Lax, Secure over https. ``max_age=0`` deletes."""
    return Cookie(
        key=name,
        value=value,
        path=path,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=is_secure(request, settings),
    )


async def form_fields(request: Request[Any, Any, Any]) -> dict[str, str]:
    """A urlencoded form's fields (the first value of each), at most ``MAX_FORM_BYTES``; read
    once, then kept with the request. Anything else is an empty form."""
    return {name: values[0] for name, values in (await _form(request)).items()}


async def form_values(request: Request[Any, Any, Any], name: str) -> list[str]:
    """Every value of one field of a urlencoded form (checkboxes), in order."""
    return (await _form(request)).get(name, [])


async def _form(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    kept: dict[str, list[str]] | None = request.state.get("console_form")
    if kept is not None:
        return kept
    fields: dict[str, list[str]] = {}
    if request.content_type[0] == "application/x-www-form-urlencoded":
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise PayloadTooLarge(f"A console form is at most {MAX_FORM_BYTES} bytes.")
        try:
            pairs = parse_qsl(
                body.decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=_MAX_FIELDS,
            )
        except (UnicodeDecodeError, ValueError):
            raise InvalidRequest("The form is not valid UTF-8 urlencoded data.") from None
        for name, value in pairs:
            fields.setdefault(name, []).append(value)
    request.state.console_form = fields
    return fields


async def csrf_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse an unsafe request whose CSRF token is missing or wrong (403 csrf_failed)."""
    request: Request[Any, Any, Any] = connection  # type: ignore[assignment]
    if request.method in _SAFE:
        return
    cookie = csrf_cookie_value(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        sent = (await form_fields(request)).get(CSRF_FIELD)
    if not cookie or not sent or not sent.isascii():
        raise CsrfRefused(_CSRF_MESSAGE)
    if not hmac.compare_digest(sent, csrf_token(cookie)):
        raise CsrfRefused(_CSRF_MESSAGE)


_CSRF_MESSAGE = (
    "This form has expired or did not come from the console (its security token is missing "
    "or wrong). Reload the page and try again."
)


def content_security_policy(scope: Scope) -> str:
    """Own origin only; the WebSocket of a job on this same host too (``ws:``/``wss:``)."""
    connect = ["'self'"]
    host = _header(scope, b"host")
    if host and _HOST.match(host):  # wss too: behind a TLS proxy the request looks like http
        connect += [f"ws://{host}", f"wss://{host}"]
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            f"connect-src {' '.join(connect)}",
            "font-src 'self'",
            "manifest-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


_FIXED_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    """ASGI middleware: the CSP and the other fixed headers on every console response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        policy = content_security_policy(scope).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"content-security-policy"
                ]
                headers += [(b"content-security-policy", policy), *_FIXED_HEADERS]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            try:
                return str(value.decode("latin-1"))
            except UnicodeDecodeError:
                return None
    return None
