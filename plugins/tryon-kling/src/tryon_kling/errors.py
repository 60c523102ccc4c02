"""Kling's answers as the core's error classes.

Every Kling answer is the envelope ``{"code", "message", "request_id", "data"}``; ``code`` 0
is success. Failures come with an HTTP status *and* a business code, and the code says more
than the status: 1101/1102 (no money left) and 1303 (too many running tasks) are all HTTP 429,
but only 1302 means "slow down".

    code        HTTP  meaning                                   raised as
    1000-1004   401   token missing/invalid/not yet valid/expired ProviderMisconfigured
    1100-1102   429   account problem, arrears, pack used up      ProviderMisconfigured
    1103        403   no permission for this API or model         ProviderMisconfigured
    1200, 1201  400   invalid request parameters                  InputRejected
    1202, 1203  404   bad method / resource (model) not found     ProviderMisconfigured
    1300        400   platform policy                             ContentRefused
    1301        400   content safety                              ContentRefused
    1302        429   too many requests                           RateLimited
    1303        429   concurrent tasks over the pack's limit      RateLimited
    1304        429   IP whitelist                                ProviderMisconfigured
    5000        500   internal error                              ProviderUnavailable
    5001        503   maintenance                                 ProviderUnavailable
    5002        504   backlog timeout                             ProviderTimeout

Kling documents no wait hint; a ``Retry-After`` header is honoured when one is present.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

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
    retry_after,
)

__all__ = ["CODES", "code_of", "error_for", "redact", "task_failure"]

CODES: dict[int, tuple[type[ProviderError], str]] = {
    1000: (ProviderMisconfigured, "Kling refused the gateway's credentials"),
    1001: (ProviderMisconfigured, "Kling received no credentials"),
    1002: (ProviderMisconfigured, "Kling refused the gateway's credentials as invalid"),
    1003: (ProviderMisconfigured, "Kling says the gateway's token is not valid yet (clock?)"),
    1004: (ProviderMisconfigured, "Kling says the gateway's token has expired (clock?)"),
    1100: (ProviderMisconfigured, "Kling reports a problem with the gateway's account"),
    1101: (ProviderMisconfigured, "the gateway's Kling account is in arrears"),
    1102: (ProviderMisconfigured, "the gateway's Kling resource pack is used up or expired"),
    1103: (ProviderMisconfigured, "the gateway's Kling account may not use this API or model"),
    1200: (InputRejected, "Kling refused the request"),
    1201: (InputRejected, "Kling refused the request's parameters"),
    1202: (ProviderMisconfigured, "Kling does not serve this method; check base_url"),
    1203: (ProviderMisconfigured, "Kling does not know this path or model; check base_url"),
    1300: (ContentRefused, "Kling's platform policy refused this request"),
    1301: (ContentRefused, "Kling's content-safety policy refused these images"),
    1302: (RateLimited, "Kling is rate limiting this gateway"),
    1303: (RateLimited, "the gateway's Kling resource pack is running its most tasks at once"),
    1304: (ProviderMisconfigured, "Kling refused this gateway's IP address (IP whitelist)"),
    5000: (ProviderUnavailable, "Kling reported an internal error"),
    5001: (ProviderUnavailable, "Kling is under maintenance"),
    5002: (ProviderTimeout, "Kling timed out on its backlog"),
}

_CONTENT_WORDS = (
    "risk",
    "safety",
    "sensitive",
    "moderat",
    "policy",
    "violat",
    "inappropriate",
    "风控",
    "审核",
    "安全",
    "敏感",
    "违规",
)
"""Words in a failed task's ``task_status_msg`` that mean the content was refused."""


def redact(text: object, secrets: Iterable[str]) -> str | None:
    """Upstream words fit for a message: a string, at most 300 characters, no secret in it."""
    if not isinstance(text, str) or not text:
        return None
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text[:300]


def error_for(
    response: httpx.Response, slug: str, body: object, secrets: Iterable[str]
) -> ProviderError:
    """The error a non-success answer means: by business code, else by HTTP status."""
    code = code_of(body)
    message = redact(body.get("message") if isinstance(body, dict) else None, secrets)
    known = CODES.get(code) if code is not None else None
    if known is None:
        if response.is_success:  # HTTP 200 with a nonzero code Kling does not document
            return BadResponse(
                f"{slug}: Kling answered with the unknown code {code}.",
                provider_code=code,
                upstream_message=message,
            )
        return classify_status(response, slug, code=code, message=message)
    kind, meaning = known
    detail = f"{slug}: {meaning} (code {code})" + (f": {message}" if message else ".")
    hint = retry_after(response) if kind is RateLimited else None
    return kind(detail, provider_code=code, upstream_message=message, retry_after=hint)


def task_failure(slug: str, task_id: str, status_message: str | None) -> ProviderError:
    """A task that Kling accepted and then reported ``failed``."""
    said = status_message or ""
    if any(word in said.lower() for word in _CONTENT_WORDS):
        return ContentRefused(
            f"{slug}: Kling's content review refused task {task_id}: {said}",
            provider_code="failed",
            upstream_message=status_message,
        )
    return TaskFailed(
        f"{slug}: Kling task {task_id} failed" + (f": {said}" if said else "."),
        provider_code="failed",
        upstream_message=status_message,
    )


def code_of(body: object) -> int | None:
    """The envelope's business code (an int, or digits in a string), if it has one."""
    value = body.get("code") if isinstance(body, dict) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
