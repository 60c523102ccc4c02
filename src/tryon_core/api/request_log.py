"""Every request's id, log line and span: the outermost layer of the app (:func:`wrap`).

- ``X-Request-Id``: the client's, when it is printable ASCII of at most 128 characters, else a
  new one; returned on every response (errors, 404s and accepted WebSocket handshakes too) and
  carried by every line logged while serving the request (:mod:`tryon_core.request_context`).
- One line per request when it ends: method, route template, path (never the query string),
  status, duration, request id, the caller's key id (never the key) and the generation it
  opened, if any. It replaces uvicorn's access line.
- With tracing on (:mod:`tryon_core.tracing`), one server span per request named by its route
  template, continuing the client's ``traceparent`` if it sent one.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from litestar import Litestar
from litestar.types import ASGIApp, Receive, Send

from tryon_core import request_context, tracing
from tryon_core.request_context import REQUEST_ID_HEADER

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["wrap"]

log = logging.getLogger("tryon.requests")

_HEADER = REQUEST_ID_HEADER.encode()


def wrap(app: Litestar) -> Litestar:
    """Put the request layer around everything the app answers (routing and its errors too)."""
    app.asgi_handler = _RequestLayer(app.asgi_handler)
    return app


class _RequestLayer:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        kind = str(scope["type"])
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sent = _header(scope, _HEADER)
        request_id = request_context.accepted_request_id(sent)
        method = str(scope.get("method", "GET")) if kind == "http" else "WEBSOCKET"
        path = str(scope["path"])
        status = [101 if kind == "websocket" else 500]
        token = request_context.open_context(request_id)
        span = _start_span(scope, method, path)
        started = time.monotonic()

        async def send_with_id(message: Any) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                headers = [*message.get("headers", ()), (_HEADER, request_id.encode())]
                message = {**message, "headers": headers}
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
            elif message["type"] == "websocket.close" and status[0] != 101:
                status[0] = 403  # closed before it was accepted
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            context = request_context.current()
            principal = scope.get("state", {}).get("principal")
            if context is not None:
                context.key_id = getattr(principal, "key_id", None)
            route = scope.get("path_template") or None
            duration_ms = int((time.monotonic() - started) * 1000)
            _line(method, route, path, status[0], duration_ms, context)
            if span is not None:
                _end_span(span, method, route, status[0], request_id)
            request_context.close_context(token)


def _header(scope: Any, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            try:
                return bytes(value).decode("ascii")
            except UnicodeDecodeError:
                return None
    return None


def _line(
    method: str,
    route: str | None,
    path: str,
    status: int,
    duration_ms: int,
    context: request_context.RequestContext | None,
) -> None:
    fields: dict[str, Any] = {
        "event": "request",
        "method": method,
        "route": route,
        "path": path,
        "status": status,
        "duration_ms": duration_ms,
        **(context.fields() if context is not None else {}),
    }
    fields = {name: value for name, value in fields.items() if value is not None}
    shown = path if route in (None, path) else f"{path} ({route})"
    log.info("%s %s %d %d ms", method, shown, status, duration_ms, extra={"fields": fields})


def _start_span(scope: Any, method: str, path: str) -> tuple[Span, Any] | None:
    """The request's span, made the current one (with the token that undoes that)."""
    tracer = tracing.active_tracer()
    if tracer is None:
        return None
    from opentelemetry import context, propagate
    from opentelemetry.trace import SpanKind, set_span_in_context

    carrier = {
        key.decode("latin-1").lower(): value.decode("latin-1")
        for key, value in scope.get("headers", ())
    }
    span = tracer.start_span(
        f"{method} {path}",
        kind=SpanKind.SERVER,
        context=propagate.extract(carrier),
        attributes={"http.request.method": method, "url.path": path},
    )
    return span, context.attach(set_span_in_context(span))


def _end_span(
    traced: tuple[Span, Any], method: str, route: str | None, status: int, request_id: str
) -> None:
    from opentelemetry import context as otel_context
    from opentelemetry.trace import Status, StatusCode

    span, token = traced
    span.update_name(f"{method} {route or 'unmatched route'}")
    if route:
        span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    span.set_attribute("tryon.request_id", request_id)
    context = request_context.current()
    if context is not None and context.generation_id:
        span.set_attribute("tryon.generation_id", context.generation_id)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
    otel_context.detach(token)
