"""Every error tryon-core raises, in one place.

Domain code raises these; only the HTTP edge (``tryon_core.api.errors``) turns them into the
error envelope ``{"error": {"code", "message", "type", "param", "metadata"}}``.

    TryOnError                      base; carries status, type, param, metadata
    ├── ClientError                 the caller's own input or account: 4xx, never a fallback
    │   ├── InvalidRequest          400 invalid_request (422 unprocessable via status=)
    │   ├── InvalidImage            400 invalid_image (and the image_* / unsupported types)
    │   ├── PayloadTooLarge         413 payload_too_large
    │   ├── UnsupportedMediaType    415 unsupported_media_type
    │   ├── AuthenticationFailed    401 authentication
    │   ├── InvalidSignature        403 invalid_signature (a tampered or expired file link)
    │   ├── Forbidden               403 insufficient_scope (origin_not_allowed, model_not_allowed)
    │   ├── PaymentRequired         402 payment_required (demo_credit_limit, key_limit_exceeded)
    │   ├── NotFound                404 not_found
    │   ├── NoCapableModel          422 no_capable_model
    │   └── TooManyRequests         429 too_many_requests (a gateway limit: rate or concurrency)
    ├── ProviderError               one upstream attempt failed; ``fallback`` decides what's next
    │   ├── RateLimited             429 rate_limit_exceeded   fallback, retry_after
    │   ├── ProviderUnavailable     502 provider_unavailable  fallback
    │   ├── ProviderTimeout         504 timeout               fallback
    │   ├── BadResponse             502 bad_response          fallback
    │   ├── TaskFailed              502 task_failed           fallback
    │   ├── NoImage                 502 no_image              fallback
    │   ├── ProviderMisconfigured   502 provider_misconfigured fallback (bad key, no quota)
    │   ├── ContentRefused          400 content_policy_violation   stop
    │   └── InputRejected           422 invalid_input         stop (upstream refused the input)
    ├── AllProvidersFailed          every candidate failed; status of the most telling attempt
    └── ServiceUnavailable          503 service_unavailable (database, storage): retry later

``ConfigError`` is separate: a bad configuration file stops the start, it never reaches a client.

What a client sent is quoted in an error only through :func:`echo`, which keeps it short: a
``param`` always is, and so is a field name or value a message quotes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = [
    "ECHO_LIMIT",
    "AllProvidersFailed",
    "AuthenticationFailed",
    "BadResponse",
    "ClientError",
    "ConfigError",
    "ContentRefused",
    "Forbidden",
    "InputRejected",
    "InvalidImage",
    "InvalidOption",
    "InvalidRequest",
    "InvalidSignature",
    "NoCapableModel",
    "NoImage",
    "NotFound",
    "PayloadTooLarge",
    "PaymentRequired",
    "ProviderError",
    "ProviderMisconfigured",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "ServiceUnavailable",
    "TaskFailed",
    "TryOnError",
    "UnsupportedMediaType",
    "echo",
]

ECHO_LIMIT = 64
"""The most characters of a client's own text an error quotes (a field name, a value)."""


def echo(text: str) -> str:
    """``text`` as an error may quote it: at most ``ECHO_LIMIT`` characters, cut with "…"."""
    return text if len(text) <= ECHO_LIMIT else text[: ECHO_LIMIT - 1] + "…"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""


class TryOnError(Exception):
    """Base of every error a request can end with."""

    status: int = 500
    type: str = "server"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        status: int | None = None,
        type: str | None = None,
        retry_after: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = None if param is None else echo(param)
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.retry_after = retry_after
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.headers: dict[str, str] = {}
        """Response headers the error's answer carries besides Retry-After."""


class ClientError(TryOnError):
    """The caller's own request, key or account is at fault. Never triggers a fallback."""

    status = 400
    type = "invalid_request"


class InvalidRequest(ClientError):
    status = 400
    type = "invalid_request"


class InvalidImage(ClientError):
    status = 400
    type = "invalid_image"


class PayloadTooLarge(ClientError):
    status = 413
    type = "payload_too_large"


class UnsupportedMediaType(ClientError):
    status = 415
    type = "unsupported_media_type"


class AuthenticationFailed(ClientError):
    status = 401
    type = "authentication"


class InvalidSignature(ClientError):
    status = 403
    type = "invalid_signature"


class Forbidden(ClientError):
    """The caller is known but may not do this: a key outside its scope, a demo session token
    on a route it does not open, from an origin it does not allow, or for a model it does not
    allow."""

    status = 403
    type = "insufficient_scope"


class PaymentRequired(ClientError):
    status = 402
    type = "payment_required"


class NotFound(ClientError):
    status = 404
    type = "not_found"


class NoCapableModel(ClientError):
    status = 422
    type = "no_capable_model"


class InvalidOption(ClientError):
    """A per-model option that no candidate model takes, or a value a model refuses."""

    status = 422
    type = "invalid_option"


class TooManyRequests(ClientError):
    """One of the gateway's own limits on the caller (requests per minute, concurrent
    generations; per key or per account) is reached. Nothing was done or charged; retry after
    ``retry_after`` seconds. Not an upstream's rate limit (that is :class:`RateLimited`)."""

    status = 429
    type = "too_many_requests"


class ServiceUnavailable(TryOnError):
    """A dependency of the gateway itself (database, file store) is down; retry later."""

    status = 503
    type = "service_unavailable"


class ProviderError(TryOnError):
    """One upstream attempt failed. Adapters raise these; the class alone decides fallback.

    ``provider_code`` and ``upstream_message`` keep the upstream's own words for the attempt
    record and logs. Neither may contain a credential.
    """

    status = 502
    type = "provider_error"
    fallback: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        provider_code: str | int | None = None,
        upstream_message: str | None = None,
        retry_after: float | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after, param=param)
        self.provider_code = None if provider_code is None else str(provider_code)
        self.upstream_message = upstream_message


class RateLimited(ProviderError):
    status = 429
    type = "rate_limit_exceeded"


class ProviderUnavailable(ProviderError):
    status = 502
    type = "provider_unavailable"


class ProviderTimeout(ProviderError):
    status = 504
    type = "timeout"


class BadResponse(ProviderError):
    status = 502
    type = "bad_response"


class TaskFailed(ProviderError):
    status = 502
    type = "task_failed"


class NoImage(ProviderError):
    status = 502
    type = "no_image"


class ProviderMisconfigured(ProviderError):
    """The gateway's own credentials or quota at the upstream are wrong: not the caller's fault."""

    status = 502
    type = "provider_misconfigured"


class ContentRefused(ProviderError):
    status = 400
    type = "content_policy_violation"
    fallback = False


class InputRejected(ProviderError):
    status = 422
    type = "invalid_input"
    fallback = False


class AllProvidersFailed(TryOnError):
    """Every candidate model failed. Status and type come from the most telling attempt."""

    def __init__(self, errors: Sequence[ProviderError], attempts: list[dict[str, Any]]) -> None:
        last = _most_telling(errors)
        super().__init__(
            f"All candidate models failed; last error: {last.message}",
            status=last.status,
            type=last.type,
            retry_after=last.retry_after,
            metadata={"attempts": attempts},
        )
        self.errors = list(errors)


def _most_telling(errors: Sequence[ProviderError]) -> ProviderError:
    """A refusal or input error beats transport failures; otherwise the last attempt speaks."""
    for error in errors:
        if not error.fallback:
            return error
    if errors and all(isinstance(e, RateLimited) for e in errors):
        return min(errors, key=lambda e: e.retry_after or 0.0)
    return errors[-1]
