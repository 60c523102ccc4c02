"""FASHN's failures as the core's error classes.

FASHN reports two kinds (docs.fashn.ai, "Error Handling"; the SDK's ``Error`` type):

API-level, before a prediction id is issued: an HTTP status and ``{"error": NAME,
"message": TEXT}``.

    status  error                      raised as
    400     BadRequest                 InputRejected        (no fallback)
    401     UnauthorizedAccess         ProviderMisconfigured
    404     NotFound                   ProviderMisconfigured on /v1/run (base_url?);
                                       TaskFailed on /v1/status (the prediction is gone)
    429     RateLimitExceeded          RateLimited (Retry-After honoured when sent)
    429     ConcurrencyLimitExceeded   RateLimited
    429     OutOfCredits               ProviderMisconfigured (the gateway's FASHN balance)
    500     InternalServerError        ProviderUnavailable
    other                              by status (tryon_core.plugin.classify_status)

Runtime, on a prediction that ended ``failed``: ``error: {"name", "message"}``.

    name                       raised as
    ImageLoadError             InputRejected          (FASHN could not read an image)
    PoseError                  InputRejected          (no body pose found)
    InputValidationError       InputRejected
    ContentModerationError     ContentRefused         (no fallback)
    PollingTimeout             ProviderTimeout
    PipelineError, ThirdPartyError, 3rdPartyProviderError, InternalServerError,
    LoRALoadError, any other   TaskFailed

A prediction that ends ``time_out`` is a ProviderTimeout; ``canceled``, a TaskFailed.
"""

from __future__ import annotations

from typing import Any

import httpx

from tryon_core.plugin import (
    ContentRefused,
    InputRejected,
    ProviderError,
    ProviderMisconfigured,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
    classify_status,
    retry_after,
)

__all__ = ["API_ERRORS", "RUNTIME_ERRORS", "api_error", "prediction_failure"]

API_ERRORS: dict[str, tuple[type[ProviderError], str]] = {
    "BadRequest": (InputRejected, "FASHN refused the request as invalid"),
    "UnauthorizedAccess": (ProviderMisconfigured, "FASHN refused the gateway's API key"),
    "NotFound": (ProviderMisconfigured, "FASHN does not know this path; check base_url"),
    "RateLimitExceeded": (RateLimited, "FASHN is rate limiting this gateway"),
    "ConcurrencyLimitExceeded": (
        RateLimited,
        "the gateway's FASHN account is running its most predictions at once",
    ),
    "OutOfCredits": (ProviderMisconfigured, "the gateway's FASHN account has no credits left"),
    "InternalServerError": (ProviderUnavailable, "FASHN reported an internal error"),
}

RUNTIME_ERRORS: dict[str, tuple[type[ProviderError], str]] = {
    "ImageLoadError": (InputRejected, "FASHN could not load an input image"),
    "PoseError": (InputRejected, "FASHN found no body pose in the photos"),
    "InputValidationError": (InputRejected, "FASHN found the inputs invalid"),
    "ContentModerationError": (ContentRefused, "FASHN's content moderation refused the images"),
    "PollingTimeout": (ProviderTimeout, "FASHN timed out on the prediction"),
}


def _words(value: Any) -> str | None:
    """FASHN's own words, fit for ``upstream_message``."""
    return value[:500] if isinstance(value, str) and value else None


def api_error(response: httpx.Response, slug: str, *, stage: str) -> ProviderError:
    """The error a non-2xx answer means. ``stage`` is "run" or "status"."""
    try:
        body = response.json()
    except ValueError:
        body = None
    name = body.get("error") if isinstance(body, dict) else None
    message = _words(body.get("message")) if isinstance(body, dict) else None
    if stage == "status" and response.status_code == 404:
        return TaskFailed(
            f"{slug}: FASHN no longer tracks this prediction.",
            provider_code=name if isinstance(name, str) else 404,
            upstream_message=message,
        )
    known = API_ERRORS.get(name) if isinstance(name, str) else None
    if known is None:
        failure = classify_status(response, slug, code=name if isinstance(name, str) else None)
        failure.upstream_message = message
        return failure
    kind, meaning = known
    hint = retry_after(response) if kind is RateLimited else None
    return kind(
        f"{slug}: {meaning} (HTTP {response.status_code} {name}).",
        provider_code=name,
        upstream_message=message,
        retry_after=hint,
    )


def prediction_failure(slug: str, prediction: str, status: str, error: Any) -> ProviderError:
    """The error of a prediction that ended ``failed``, ``canceled`` or ``time_out``."""
    name = error.get("name") if isinstance(error, dict) else None
    message = _words(error.get("message")) if isinstance(error, dict) else None
    code = name if isinstance(name, str) and name else status
    if status == "time_out":
        kind: type[ProviderError] = ProviderTimeout
        meaning = "FASHN timed out on the prediction"
    elif status == "canceled":
        kind, meaning = TaskFailed, "the prediction was canceled at FASHN"
    else:
        kind, meaning = RUNTIME_ERRORS.get(code, (TaskFailed, "FASHN's prediction failed"))
    return kind(
        f"{slug}: {meaning} (prediction {prediction}, {code}).",
        provider_code=code,
        upstream_message=message,
    )
