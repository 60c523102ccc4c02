"""fal's failures as the core's error classes.

fal reports a failure in one of three shapes (WIRE.md section 4.4):

- a model error: HTTP 4xx, usually 422, ``{"detail": [{"loc", "msg", "type", …}]}``; an item
  of type ``content_policy_violation`` is a content refusal, anything else refused input;
- a request (infrastructure) error: ``{"detail": "text", "error_type": "…"}`` with the same
  type in the ``X-Fal-Error-Type`` header: ``request_timeout`` and ``startup_timeout`` (504),
  ``runner_*`` (503);
- a failed queue request: status ``COMPLETED`` carrying ``error`` and ``error_type`` (there is
  no FAILED state).

Auth and billing problems (401, 403, 402, "User is locked. Reason: Exhausted balance") are the
gateway's own: ``ProviderMisconfigured``. Messages shown to clients never quote fal; fal's own
words go to ``upstream_message`` with the key scrubbed out, in case an answer echoes it.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
import msgspec

from tryon_core.plugin import (
    BadResponse,
    ContentRefused,
    InputRejected,
    ProviderError,
    ProviderMisconfigured,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
    classify_status,
    json_body,
    retry_after,
)

__all__ = ["answer", "error_for", "failed_request", "scrub"]

Stage = Literal["submit", "status", "result"]

TIMEOUT_TYPES = frozenset({"request_timeout", "startup_timeout"})
_BILLING_WORDS = ("exhausted balance", "user is locked", "insufficient balance")
_MAX_MESSAGE = 500


class _Item(msgspec.Struct):
    loc: list[Any] = msgspec.field(default_factory=list)
    msg: str = ""
    type: str = ""


class _ErrorBody(msgspec.Struct):
    detail: str | list[_Item] | None = None
    error_type: str | None = None


def scrub(text: str, secret: str | None) -> str:
    """``text`` without the key (nor its secret half), cut to a loggable length."""
    if secret:
        for part in (secret, *secret.split(":")):  # the whole key first, then its halves
            if len(part) >= 4:
                text = text.replace(part, "***")
    return text[:_MAX_MESSAGE]


def answer(response: httpx.Response, slug: str, *, secret: str | None, stage: Stage) -> Any:
    """The JSON object of a 2xx answer; any other answer raises what it means."""
    if not response.is_success:
        raise error_for(response, slug, secret=secret, stage=stage)
    body = json_body(response, slug)
    if not isinstance(body, dict):
        raise BadResponse(
            f"{slug}: fal answered the {stage} call with JSON that is not an object.",
            provider_code=response.status_code,
        )
    return body


def error_for(
    response: httpx.Response, slug: str, *, secret: str | None, stage: Stage
) -> ProviderError:
    """What a non-2xx answer from the queue means."""
    status = response.status_code
    body = _error_body(response)
    items = body.detail if isinstance(body.detail, list) else []
    error_type = body.error_type or response.headers.get("x-fal-error-type")
    message = scrub(_words(body, response), secret) or None
    kind, text = _meaning(status, error_type, items, message, stage)
    types = [i.type for i in items if i.type]
    if kind is ContentRefused:
        types = ["content_policy_violation"]
    code: str | int = error_type or next(iter(types), None) or status
    if kind is None:
        error = classify_status(response, slug, code=code)
        error.upstream_message = message
        return error
    wait = retry_after(response) if kind is RateLimited else None
    return kind(f"{slug}: {text}", provider_code=code, upstream_message=message, retry_after=wait)


def _meaning(
    status: int, error_type: str | None, items: list[_Item], message: str | None, stage: Stage
) -> tuple[type[ProviderError] | None, str]:
    """The error class and client-facing words for an answer; ``None`` for the usual ones."""
    if error_type in TIMEOUT_TYPES:
        return ProviderTimeout, "fal reports that the request timed out."
    if error_type and error_type.startswith("runner_"):
        return ProviderUnavailable, "fal could not run the request."
    if any(item.type == "content_policy_violation" for item in items):
        return ContentRefused, "fal's content checker refused the request."
    if status == 402 or any(word in (message or "").lower() for word in _BILLING_WORDS):
        return ProviderMisconfigured, "fal refused the gateway's account (no balance, or locked)."
    if status in (401, 403):
        return ProviderMisconfigured, "fal refused the gateway's key."
    if status == 429:
        return RateLimited, "fal is rate limiting the gateway."
    if status == 404 and stage == "submit":
        return ProviderMisconfigured, "fal does not serve this endpoint."
    if status == 404:
        return TaskFailed, "fal no longer knows this request."
    if items or status in (400, 413, 415, 422):
        return InputRejected, "fal refused the input."
    return None, ""


def failed_request(slug: str, error: Any, error_type: Any, *, secret: str | None) -> ProviderError:
    """A queue request that ended ``COMPLETED`` with an ``error``."""
    kind = error_type if isinstance(error_type, str) and error_type else None
    message = scrub(str(error), secret)
    if kind in TIMEOUT_TYPES:
        cls: type[ProviderError] = ProviderTimeout
        text = "fal reports that the request timed out."
    elif kind and kind.startswith("runner_"):
        cls, text = ProviderUnavailable, "fal could not run the request."
    else:
        cls, text = TaskFailed, "fal reports that the request failed."
    return cls(f"{slug}: {text}", provider_code=kind or "error", upstream_message=message)


def _error_body(response: httpx.Response) -> _ErrorBody:
    try:
        return msgspec.json.decode(response.content, type=_ErrorBody)
    except msgspec.DecodeError:  # not JSON, or another shape: only the status speaks
        return _ErrorBody()


def _words(body: _ErrorBody, response: httpx.Response) -> str:
    if isinstance(body.detail, str):
        return body.detail
    if body.detail:
        return "; ".join(f"{'.'.join(map(str, i.loc))}: {i.msg}" for i in body.detail)
    return response.reason_phrase
