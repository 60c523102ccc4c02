"""The one error envelope, OpenRouter's: ``{"error": {"code", "message", "type", "param",
"metadata"}}`` with the HTTP status equal to ``code``. Every failure leaves through here."""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from tryon_core import metrics
from tryon_core.api.disconnect import ClientDisconnected
from tryon_core.errors import TooManyRequests, TryOnError

__all__ = ["EXCEPTION_HANDLERS", "ErrorBody", "ErrorEnvelope", "envelope", "error_response"]

log = logging.getLogger("tryon.api")

_LITESTAR_TYPES = {
    400: "invalid_request",
    401: "authentication",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
}


class ErrorBody(msgspec.Struct, kw_only=True):
    code: int
    message: str
    type: str
    param: str | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class ErrorEnvelope(msgspec.Struct, kw_only=True):
    error: ErrorBody


def envelope(
    status: int,
    message: str,
    type: str,
    *,
    param: str | None = None,
    metadata: dict[str, Any] | None = None,
    retry_after: float | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ErrorEnvelope]:
    all_headers = dict(headers or {})
    if retry_after is not None or status in (429, 503):
        seconds = max(1, min(60, math.ceil(retry_after or 1)))
        all_headers["Retry-After"] = str(seconds)
    return Response(
        ErrorEnvelope(
            error=ErrorBody(
                code=status, message=message, type=type, param=param, metadata=metadata or {}
            )
        ),
        status_code=status,
        media_type=MediaType.JSON,
        headers=all_headers,
    )


def error_response(exc: TryOnError) -> Response[ErrorEnvelope]:
    """The answer a domain error gets: its envelope, status and Retry-After."""
    return envelope(
        exc.status,
        exc.message,
        exc.type,
        param=exc.param,
        metadata=exc.metadata,
        retry_after=exc.retry_after,
        headers=exc.headers,
    )


def _tryon_error(_: Request[Any, Any, Any], exc: TryOnError) -> Response[ErrorEnvelope]:
    if isinstance(exc, TooManyRequests):
        metrics.rate_limited(exc)
    if exc.status >= 500 and exc.status not in (502, 503, 504):
        log.error("request failed: %s", exc.message)
    return error_response(exc)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorEnvelope]:
    status = exc.status_code
    if status >= 500:
        log.error("framework error %s: %s", status, exc.detail)
        return envelope(500, "Internal server error.", "server")
    param = None
    message = exc.detail or HTTPStatus(status).phrase
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        first = exc.extra[0]
        if isinstance(first, dict):
            param = first.get("key")
            message = f"{message}: {first.get('message', '')}".rstrip(": ")
    if status == 404:
        message = "No such route."
    if status == 413 and message == HTTPStatus(413).phrase:  # the body limit, not a part limit
        limit = request.app.request_max_body_size
        message = f"The request body is larger than the {limit}-byte limit."
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
    return envelope(
        status,
        message,
        _LITESTAR_TYPES.get(status, "invalid_request"),
        param=param,
        headers=headers,
    )


def _disconnected(
    request: Request[Any, Any, Any], exc: ClientDisconnected
) -> Response[ErrorEnvelope]:
    log.info(
        "client disconnected: %s %s, %s",
        request.method,
        request.url.path,
        str(exc) or "before the answer was ready; its work was abandoned",
    )
    return envelope(499, "The client closed the connection.", "client_closed_request")


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorEnvelope]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return envelope(500, "Internal server error.", "server")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    TryOnError: _tryon_error,
    HTTPException: _http_error,
    ClientDisconnected: _disconnected,
    Exception: _unexpected,
}
