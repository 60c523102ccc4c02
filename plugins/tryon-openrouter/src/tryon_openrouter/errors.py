"""OpenRouter's errors as the core's ``ProviderError`` classes.

An error is ``{"error": {"code": STATUS, "message", "metadata": {...}}}``. It comes three ways
(api_reference/errors-and-debugging): as the HTTP status of the answer (a bad request, the
key, the credits, moderation, rate limits, a provider down), as a top-level ``error`` in an
HTTP 200 body, or inside ``choices[0].error`` with ``finish_reason: "error"`` when the
provider failed while generating. ``metadata.error_type`` is OpenRouter's stable vocabulary;
``metadata.reasons`` / ``flagged_input`` mark a moderation refusal; ``metadata.limit_source``
tells a transient in-flight budget apart from an empty balance on a 402.
"""

from __future__ import annotations

import re
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
    retry_after,
)

__all__ = ["error_in", "generation_failure", "http_failure", "status_failure"]

#: ``metadata.error_type`` values that mean the content was refused.
_REFUSALS = frozenset({"content_policy_violation", "refusal"})
#: ``error.availability.code`` values that mean the configured model cannot be served as set.
_UNSERVABLE = frozenset(
    {
        "model_not_found",
        "wrong_endpoint",
        "no_endpoints",
        "model_deprecated",
        "free_variant_ended",
        "region_restricted",
        "privacy_restricted",
        "constraint_filtered",
    }
)
_TIMEOUTS = frozenset({408, 504, 524})
_KEY_LIKE = re.compile(r"sk-or-[A-Za-z0-9_\-]+")
_MAX_WORDS = 500


def http_failure(response: httpx.Response, slug: str) -> ProviderError:
    """The error a non-2xx answer means (its body may be a proxy's HTML page: no details)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = error_in(body) or {}
    return status_failure(response.status_code, error, slug, retry_after(response))


def status_failure(
    status: int, error: dict[str, Any], slug: str, wait: float | None = None
) -> ProviderError:
    """The error an OpenRouter status and error object mean (an HTTP error, or the top-level
    ``error`` of a 200 whose ``code`` is the status it stands for)."""
    metadata = _metadata(error)
    kind = _text(metadata.get("error_type"))
    availability = error.get("availability")
    unservable = isinstance(availability, dict) and availability.get("code") in _UNSERVABLE
    said = _said(error)
    if kind in _REFUSALS or (
        status == 403 and ("reasons" in metadata or "flagged_input" in metadata)
    ):
        return ContentRefused(
            f"{slug}: OpenRouter or its provider refused this content.",
            provider_code=kind or "moderation",
            upstream_message=said,
        )
    if status == 402:
        source = _text(metadata.get("limit_source"))
        if source == "openrouter_in_flight_budget":  # transient: settles within seconds
            return RateLimited(
                f"{slug}: OpenRouter's in-flight spending budget is full for now.",
                provider_code=source,
                upstream_message=said,
                retry_after=wait,
            )
        return ProviderMisconfigured(
            f"{slug}: the gateway's OpenRouter account or key has no credits left.",
            provider_code=source or "payment_required",
            upstream_message=said,
        )
    if status == 429:
        return RateLimited(
            f"{slug}: OpenRouter is rate limiting this gateway.",
            provider_code=kind or status,
            upstream_message=said,
            retry_after=wait,
        )
    if status in (401, 403, 404) or unservable or "not a valid model" in (said or ""):
        return ProviderMisconfigured(
            f"{slug}: OpenRouter refused the gateway's key or this model's settings "
            f"(HTTP {status}).",
            provider_code=kind or status,
            upstream_message=said,
        )
    if status in _TIMEOUTS or kind == "timeout":
        return ProviderTimeout(
            f"{slug}: OpenRouter's provider timed out.",
            provider_code=kind or status,
            upstream_message=said,
        )
    if 400 <= status < 500:
        return InputRejected(
            f"{slug}: OpenRouter refused the request as invalid ({kind or status}).",
            provider_code=kind or status,
            upstream_message=said,
        )
    return ProviderUnavailable(
        f"{slug}: OpenRouter or its provider is unavailable (HTTP {status}).",
        provider_code=kind or status,
        upstream_message=said,
        retry_after=wait,
    )


def generation_failure(error: dict[str, Any], slug: str) -> ProviderError:
    """The error of ``choices[0].error``: the provider failed after OpenRouter accepted."""
    kind = _text(_metadata(error).get("error_type"))
    code = error.get("code")
    said = _said(error)
    if kind in _REFUSALS:
        return ContentRefused(
            f"{slug}: the provider refused to make this image.",
            provider_code=kind,
            upstream_message=said,
        )
    if kind == "rate_limit_exceeded" or code == 429:
        return RateLimited(
            f"{slug}: the provider was rate limited while generating.",
            provider_code=kind or code,
            upstream_message=said,
        )
    return TaskFailed(
        f"{slug}: the provider failed while generating the image.",
        provider_code=kind or (code if isinstance(code, int) else "error"),
        upstream_message=said,
    )


def error_in(body: Any) -> dict[str, Any] | None:
    """The ``{"error": {...}}`` object of a JSON body, if it has one."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]  # type: ignore[no-any-return]
    return None


def _metadata(error: dict[str, Any]) -> dict[str, Any]:
    metadata = error.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _said(error: dict[str, Any]) -> str | None:
    """OpenRouter's words for the logs: message, provider, reasons, the provider's raw body."""
    metadata = _metadata(error)
    parts = [_text(error.get("message"))]
    if provider := _text(metadata.get("provider_name")):
        parts.append(f"(provider: {provider})")
    reasons = metadata.get("reasons")
    if isinstance(reasons, list) and reasons:
        parts.append("reasons: " + ", ".join(str(reason) for reason in reasons))
    raw = metadata.get("raw")
    if raw is not None:
        parts.append(f"raw: {raw}")
    text = " ".join(" ".join(part.split()) for part in parts if part)
    return _KEY_LIKE.sub("[redacted]", text)[:_MAX_WORDS] or None
