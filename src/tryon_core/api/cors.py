"""CORS for demo sessions: only the origins some demo session allows, only on demo routes.

A browser page may call the gateway from another origin only through the routes open to demo
sessions (``opt={"demo": True}``), and only from an origin a demo session lists:

- A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) carries no token, so it is
  allowed when some live demo session (not expired, not revoked) lists the ``Origin``, the
  requested method is one the path opens to demo sessions and the requested headers are
  among ``Authorization``, ``Content-Type`` and ``Idempotency-Key``. Then ``204`` with those
  methods and headers; else ``403 origin_not_allowed``, with no CORS headers.
- Any other request with an ``Origin`` on a demo route gets ``Access-Control-Allow-Origin``
  when the demo session its token names lists that origin, whatever the session's state (so
  a page can read its ``401 demo_session_expired``), or, without a demo token (a signed file
  link, the models list), when some live session lists it.

Everything else gets no CORS header at all: the browser keeps the answer from the page. Who
may *do* what is decided by the guard (:mod:`tryon_core.api.scopes`), which refuses a demo
token from an origin its session does not allow, preflight or not.
"""

from __future__ import annotations

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from tryon_core import demo_sessions
from tryon_core.api.errors import ErrorBody, ErrorEnvelope
from tryon_core.gateway import Gateway

__all__ = ["ALLOWED_HEADERS", "EXPOSED_HEADERS", "MAX_AGE_SECONDS", "demo_cors"]

ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")
EXPOSED_HEADERS = ("Location", "Retry-After", "X-Tryon-Generation", "X-Tryon-Model")
MAX_AGE_SECONDS = 600
_METHODS = ("GET", "HEAD", "POST", "DELETE")


def demo_cors(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: see the module docstring."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        origin = _header(scope, b"origin")
        if scope["type"] != ScopeType.HTTP or origin is None:
            await app(scope, receive, send)
            return
        requested = _header(scope, b"access-control-request-method")
        if scope["method"] == "OPTIONS" and requested is not None:
            await _preflight(scope, send, origin, requested.upper())
            return
        if not scope["route_handler"].opt.get("demo"):
            await app(scope, receive, send)
            return
        allowed = await _allowed(scope, origin)

        async def cors_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), (b"vary", b"Origin")]
                if allowed:
                    headers += [
                        (b"access-control-allow-origin", origin.encode("latin-1")),
                        (b"access-control-expose-headers", ", ".join(EXPOSED_HEADERS).encode()),
                    ]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, cors_send)

    return middleware


async def _preflight(scope: Scope, send: Send, origin: str, requested: str) -> None:
    methods = _demo_methods(scope)
    wanted = {
        h.strip().lower()
        for h in (_header(scope, b"access-control-request-headers") or "").split(",")
        if h.strip()
    }
    gateway: Gateway = scope["litestar_app"].state.gateway
    ok = requested in methods and wanted <= {h.lower() for h in ALLOWED_HEADERS}
    if ok:
        async with gateway.database.reading() as conn:
            ok = await demo_sessions.origin_allowed(conn, origin)
    if not ok:
        body = msgspec.json.encode(
            ErrorEnvelope(
                error=ErrorBody(
                    code=403,
                    message="This origin may not call this route from a browser: no live demo "
                    "session allows it for this method and these headers.",
                    type="origin_not_allowed",
                )
            )
        )
        await _answer(send, 403, [(b"content-type", b"application/json")], body)
        return
    headers = [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-methods", ", ".join(methods).encode()),
        (b"access-control-allow-headers", ", ".join(ALLOWED_HEADERS).encode()),
        (b"access-control-max-age", str(MAX_AGE_SECONDS).encode()),
    ]
    await _answer(send, 204, headers, b"")


def _demo_methods(scope: Scope) -> list[str]:
    """The methods of this path that are open to demo sessions."""
    router = scope["litestar_app"].asgi_router
    found = []
    for method in _METHODS:
        try:
            handler = router.handle_routing(path=scope["path"], method=method)[1]
        except Exception:  # no such route, or not this method: 404/405 from the router
            continue
        if handler.opt.get("demo"):
            found.append(method)
    return found


async def _allowed(scope: Scope, origin: str) -> bool:
    gateway: Gateway = scope["litestar_app"].state.gateway
    token = _demo_token(scope)
    async with gateway.database.reading() as conn:
        if token is not None:
            return origin in await demo_sessions.origins_of_token(conn, token)
        return await demo_sessions.origin_allowed(conn, origin)


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *headers,
                (b"vary", b"Origin"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def _demo_token(scope: Scope) -> str | None:
    scheme, _, token = (_header(scope, b"authorization") or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token.startswith(demo_sessions.TOKEN_PREFIX):
        return token
    return None
