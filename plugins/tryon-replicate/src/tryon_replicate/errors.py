"""Replicate's failures as the core's error classes.

Replicate answers an error with an RFC 7807 problem (``application/problem+json``):
``{"title", "detail", "status"}``, and for rejected input also ``invalid_fields``, a list of
``{"type", "field", "description"}`` where ``field`` is ``input.NAME``. What each becomes:

- 401, 403 (the token), 402 (no credit): ``ProviderMisconfigured``, the gateway's own account;
- 429: ``RateLimited`` with ``Retry-After``;
- 404 on create (no such model, version or deployment): ``ProviderMisconfigured``; 404 on a
  prediction: ``TaskFailed`` (Replicate no longer knows it);
- 422 on create: ``InputRejected`` naming the request field when every field Replicate faults
  is one the request filled (the photos, prompt, seed, an option); ``ProviderMisconfigured``
  when one is the operator's (a fixed input, a category value, a missing required input) or
  the version is refused ("Invalid version or not permitted");
- anything else by its status (``classify_status``): 5xx ``ProviderUnavailable``, 504
  ``ProviderTimeout``, 400/413/415 ``InputRejected``.

A prediction that ends ``failed`` is a ``TaskFailed``, or a ``ContentRefused`` when its error
is the safety checker's ("NSFW content detected…"); ``canceled`` (by someone else) is a
``TaskFailed``, ``aborted`` (stopped before it ran) a ``ProviderUnavailable``. Replicate's own
words go to ``upstream_message`` only: the error's message is shown to clients.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import httpx
import msgspec

from tryon_core.plugin import (
    BadResponse,
    ContentRefused,
    InputRejected,
    ProviderError,
    ProviderMisconfigured,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
    classify_status,
    json_body,
    retry_after,
)
from tryon_replicate.models import Role

__all__ = ["Stage", "answer", "error_for", "failed_prediction"]

Stage = Literal["create", "get", "cancel"]

_MAX_MESSAGE = 500
_SAFETY_WORDS = ("nsfw", "safety checker", "content policy", "flagged as sensitive")
_REQUEST_FIELDS: dict[Role, str] = {
    "person": "person_images",
    "garment": "garment_images",
    "prompt": "prompt",
    "seed": "seed",
}


class _Field(msgspec.Struct):
    field: str = ""
    type: str = ""
    description: str = ""


class _Problem(msgspec.Struct):
    title: str | None = None
    detail: str | None = None
    invalid_fields: list[_Field] = []


def answer(response: httpx.Response, slug: str, *, stage: Stage, roles: Mapping[str, Role]) -> Any:
    """The JSON object of a 2xx answer; any other answer raises what it means."""
    if not response.is_success:
        raise error_for(response, slug, stage=stage, roles=roles)
    body = json_body(response, slug)
    if not isinstance(body, dict):
        raise BadResponse(
            f"{slug}: Replicate answered with JSON that is not a prediction.",
            provider_code=response.status_code,
        )
    return body


def error_for(
    response: httpx.Response, slug: str, *, stage: Stage, roles: Mapping[str, Role]
) -> ProviderError:
    """What a non-2xx answer means."""
    status = response.status_code
    problem = _problem(response)
    words = "; ".join(w for w in (problem.title, problem.detail) if w)[:_MAX_MESSAGE] or None
    if status in (401, 403):
        error: ProviderError = ProviderMisconfigured(
            f"{slug}: Replicate refused the gateway's API token."
        )
    elif status == 402:
        error = ProviderMisconfigured(
            f"{slug}: Replicate refused the gateway's account (insufficient credit)."
        )
    elif status == 429:
        error = RateLimited(
            f"{slug}: Replicate is rate limiting the gateway.", retry_after=retry_after(response)
        )
    elif status == 404 and stage == "create":
        error = ProviderMisconfigured(f"{slug}: Replicate has no such model or deployment.")
    elif status == 404:
        error = TaskFailed(f"{slug}: Replicate no longer knows this prediction.")
    elif status == 422 and stage == "create":
        error = _invalid(slug, problem, roles)
    else:
        error = classify_status(response, slug)
    error.provider_code = error.provider_code or str(status)
    error.upstream_message = words
    return error


def _invalid(slug: str, problem: _Problem, roles: Mapping[str, Role]) -> ProviderError:
    """A 422 on create: the request's input, or the operator's configuration?"""
    names = [item.field.removeprefix("input.") for item in problem.invalid_fields]
    params = [_param(name, roles.get(name)) for name in names]
    if names and all(params):
        return InputRejected(
            f"{slug}: Replicate refused the input {names[0]!r}.", provider_code=422, param=params[0]
        )
    return ProviderMisconfigured(
        f"{slug}: Replicate refused the prediction as configured (its version or inputs).",
        provider_code=422,
    )


def _param(name: str, role: Role | None) -> str | None:
    """The request field that filled input ``name``, if the request filled it."""
    if role == "option":
        return f"options.{name}"
    return _REQUEST_FIELDS.get(role) if role is not None else None


def failed_prediction(slug: str, status: str, error: Any, logs: Any) -> ProviderError:
    """A prediction that ended ``failed``, ``canceled`` or ``aborted``."""
    text = str(error or "").strip()
    tail = str(logs or "").strip()[-200:]
    message = "; ".join(part for part in (text, tail and f"logs: {tail}") if part)[:_MAX_MESSAGE]
    if status == "failed" and any(word in text.lower() for word in _SAFETY_WORDS):
        return ContentRefused(
            f"{slug}: Replicate's safety checker refused the result.",
            provider_code="nsfw",
            upstream_message=message or None,
        )
    if status == "aborted":
        return ProviderUnavailable(
            f"{slug}: Replicate stopped the prediction before it ran.",
            provider_code="aborted",
            upstream_message=message or None,
        )
    what = "was canceled" if status == "canceled" else "failed"
    return TaskFailed(
        f"{slug}: the prediction {what} on Replicate.",
        provider_code=status,
        upstream_message=message or None,
    )


def _problem(response: httpx.Response) -> _Problem:
    try:
        return msgspec.json.decode(response.content, type=_Problem)
    except msgspec.DecodeError:  # not JSON, or another shape: only the status speaks
        return _Problem()
