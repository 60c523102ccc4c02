"""What each route needs, and the one guard that enforces it.

A route declares it in its ``opt``: ``{"scope": "inference"}`` or ``{"scope": "management"}``
for the key scope it needs (``"any"``: a key of either), plus ``"demo": True`` where a demo
session's token may call it too (from an origin the session allows). A route without
``"scope"`` takes no credential.

:func:`guard` runs before the handler (and before its body is read), as the app's
``before_request`` hook (Litestar hands each of its *guards* a copy of
the route handler, ~0.1 ms of CPU per request here, for the same check): it authenticates the
caller, refuses a key outside its scope or a demo token on a route not open to demo sessions
(``403 insufficient_scope``, naming the scope needed), and keeps the principal for
:func:`provide_principal`. On a route that starts generations (``"rate_limited": True``) it
then counts the request against the caller's rate limits (``429 too_many_requests``). A
WebSocket authorizes itself through :func:`authorize` (it answers refusals with a close code,
after accepting). :func:`check_declared` refuses, at
start-up, a handler that asks for the principal without declaring a scope, and
:func:`check_guarded` a route whose own ``before_request`` hook would take the guard's place.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from litestar import Litestar, Request
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.types import Message, Scope

from tryon_core.accounts import Principal
from tryon_core.demo_sessions import TOKEN_PREFIX
from tryon_core.errors import AuthenticationFailed, Forbidden
from tryon_core.gateway import Gateway

__all__ = [
    "ANY_KEY",
    "INFERENCE",
    "INFERENCE_OR_DEMO",
    "MANAGEMENT",
    "OPEN_TO_DEMO",
    "RATE_LIMITED",
    "authorize",
    "check",
    "check_declared",
    "check_guarded",
    "guard",
    "principal_of",
    "provide_principal",
    "rate_limit_headers",
]

ANY_KEY: dict[str, Any] = {"scope": "any"}
"""A key of either scope (``GET /api/v1/key``), not a demo session."""
INFERENCE: dict[str, Any] = {"scope": "inference"}
"""Try-ons, chat completions, jobs, files, credits: an inference key."""
INFERENCE_OR_DEMO: dict[str, Any] = {"scope": "inference", "demo": True}
"""An inference key, or a demo session's token (for its own work only)."""
RATE_LIMITED: dict[str, Any] = {"rate_limited": True}
"""Added to a route that starts generations: each request counts against the caller's
requests-per-minute limits (:mod:`tryon_core.rate_limits`), before its body is read."""
MANAGEMENT: dict[str, Any] = {"scope": "management"}
"""Keys, demo sessions, webhooks: a management key."""
OPEN_TO_DEMO: dict[str, Any] = {"demo": True}
"""No credential needed; a demo session's token, if sent, is checked (and narrows the answer)."""

_SIGNING_PARAMETERS = ("expires", "sig")


def check(principal: Principal, opt: Mapping[str, Any]) -> None:
    """Raise 403 ``insufficient_scope`` unless ``principal`` may call a route with ``opt``."""
    needed = opt.get("scope")
    if principal.kind == "demo":
        if not opt.get("demo"):
            raise Forbidden(
                "A demo session token cannot do this: it lists models, runs try-ons and reads "
                f"its own jobs and files. This needs a key with the {needed!r} scope.",
                metadata={"required_scope": needed, "scopes": []},
            )
        return
    if needed != "any" and needed not in principal.scopes:
        raise Forbidden(
            f"This needs a key with the {needed!r} scope; this key has "
            + (" and ".join(repr(s) for s in sorted(principal.scopes)) or "no scope")
            + ".",
            metadata={"required_scope": needed, "scopes": sorted(principal.scopes)},
        )


async def authorize(
    connection: ASGIConnection[Any, Any, Any, Any],
    opt: Mapping[str, Any],
    *,
    authorization: str | None = None,
) -> Principal:
    """Authenticate the caller of ``connection`` (or of ``authorization``) and :func:`check`."""
    gateway: Gateway = connection.app.state.gateway
    principal = await gateway.authenticate(
        authorization if authorization is not None else connection.headers.get("authorization"),
        origin=connection.headers.get("origin"),
    )
    check(principal, opt)
    return principal


async def guard(request: Request[Any, Any, Any]) -> None:
    """The app's guard, its ``before_request`` hook (HTTP only: a WebSocket answers with a
    close code, so it calls :func:`authorize` itself): see the module's docstring."""
    opt = request.route_handler.opt
    if "scope" not in opt:
        if opt.get("demo") and _bears_demo_token(request):
            request.state.principal = await authorize(request, opt)
        return
    if opt.get("signed_link"):
        if any(p in request.query_params for p in _SIGNING_PARAMETERS):
            return  # the link alone decides (the handler verifies it)
        if not request.headers.get("authorization"):
            raise AuthenticationFailed("Send the signed URL, or the owner's API key.")
    principal = await authorize(request, opt)
    request.state.principal = principal
    if opt.get("rate_limited"):
        gateway: Gateway = request.app.state.gateway
        request.state.rate_limit_headers = await gateway.rate_limits.admit(principal)


def check_guarded(app: Litestar) -> None:
    """Refuse an HTTP route that a layer of its own gives a ``before_request`` hook: Litestar
    runs only the nearest one, so it would run instead of :func:`guard`."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            hooks = [layer for layer in handler.ownership_layers if layer.before_request]
            if hooks != [app]:
                raise RuntimeError(f"{handler} has a before_request hook of its own")


async def rate_limit_headers(message: Message, scope: Scope) -> None:
    """The app's ``before_send`` hook: an admitted request's answer carries its
    ``X-RateLimit-*`` headers (a refusal's error carries its own).

    ``async`` although it never waits: Litestar runs a plain function hook in a worker
    thread, a hop there and back for every message of every answer."""
    if message["type"] != "http.response.start":
        return
    headers: dict[str, str] | None = scope.get("state", {}).get("rate_limit_headers")
    if headers:
        mutable = MutableScopeHeaders.from_message(message)
        for name, value in headers.items():
            mutable[name] = value


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The caller the guard authenticated, if it did."""
    principal: Principal | None = connection.state.get("principal")
    return principal


async def provide_principal(
    request: Request[Any, Any, Any], gateway: NamedDependency[Gateway]
) -> Principal:
    """The ``principal`` dependency: who the guard let through.

    It takes ``gateway`` only to come after it: Litestar resolves dependencies of one level
    together in an anyio task group (~40 us a request here), and both of these are instant."""
    del gateway
    principal = principal_of(request)
    if principal is None:  # check_declared() makes this unreachable
        raise RuntimeError(f"{request.url.path} takes a principal but declares no scope")
    return principal


def check_declared(handlers: Iterable[BaseRouteHandler]) -> None:
    """Refuse a handler that takes ``principal`` without a ``scope`` in its ``opt``."""
    for handler in handlers:
        takes = "principal" in inspect.signature(handler.fn).parameters
        if takes and handler.opt.get("scope") not in ("any", "inference", "management"):
            raise RuntimeError(f"{handler} takes the principal but declares no scope in opt")


def _bears_demo_token(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    scheme, _, token = (connection.headers.get("authorization") or "").strip().partition(" ")
    return scheme.lower() == "bearer" and token.strip().startswith(TOKEN_PREFIX)
