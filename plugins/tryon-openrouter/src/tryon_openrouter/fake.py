"""A fake of OpenRouter's ``POST /api/v1/chat/completions`` for image models.

It checks requests as OpenRouter does (see :mod:`tryon_openrouter.fake_checks`):

- ``Authorization: Bearer KEY``: none gives 401 "No auth credentials found", another key 401
  "User not found.";
- a JSON body with known fields; ``model`` a slug of its catalog (else 400 "… is not a valid
  model ID"); ``modalities`` the model can answer with (else 404 "No endpoints found that
  support the requested output modalities: …"); ``image_config`` values the model takes;
  ``messages`` of text and ``image_url`` parts whose data URLs hold decodable PNG, JPEG, WebP
  or GIF images of the type they declare.

It answers as OpenRouter does: ``{"id": "gen-…", "object": "chat.completion", "provider",
"model", "choices": [{"finish_reason": "stop", "native_finish_reason", "message": {"role":
"assistant", "content", "images": [{"type": "image_url", "image_url": {"url": "data:image/png;
base64,…"}}]}}], "usage": {…}}``, the image being :func:`result_image` of the first image (the
person) and the others (the garments). Without ``image`` among the modalities the answer is
text only. Faults render as OpenRouter's (the README has the table and the ``code`` variants).
"""

from __future__ import annotations

import asyncio
import base64
import math
import secrets
import time
from typing import Any

from litestar import Litestar, Request, Response, post
from litestar.datastructures import State

from tryon_core.testing import FakeState, Fault, create_fake_app, result_image
from tryon_openrouter.fake_checks import CATALOG, ChatCall, FakeModel, Refusal, read_call

__all__ = ["PATH", "TEST_API_KEY", "create_app"]

TEST_API_KEY = "sk-or-v1-test-key"
PATH = "/api/v1/chat/completions"

#: Faults answered with an error status instead of the call (the others shape a 200).
_CALL_FAULTS = frozenset({"rate_limit", "quota", "server_error", "invalid_input"})


def create_app(
    *,
    api_key: str = TEST_API_KEY,
    catalog: dict[str, FakeModel] | None = None,
    state: FakeState | None = None,
) -> Litestar:
    """The fake, accepting only ``api_key``, serving the models of ``catalog``."""
    app = create_fake_app([_chat_completions], state=state)
    app.state["openrouter_key"] = api_key
    app.state["openrouter_catalog"] = dict(CATALOG if catalog is None else catalog)
    return app


@post(PATH, status_code=200)
async def _chat_completions(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    body = await request.body()
    fault = state.fake.next_fault()
    if fault is not None and fault.kind == "hang":
        state.fake.record(request, body, fault="hang")
        await FakeState.hang()
    try:
        call = _accept(request, body, state, fault)
    except Refusal as refusal:
        state.fake.record(request, body, refused=refusal.status)
        return Response(
            {"error": refusal.error}, status_code=refusal.status, headers=refusal.headers
        )
    state.fake.record(request, body, **_summary(call))
    if fault is not None and fault.kind == "slow_task":
        await asyncio.sleep(fault.seconds)
    if fault is not None and fault.kind == "malformed":
        return Response(b'{"id": "gen-', media_type="application/json")
    return Response(await asyncio.to_thread(_answer, call, fault))


def _accept(
    request: Request[Any, Any, Any], body: bytes, state: State, fault: Fault | None
) -> ChatCall:
    """The call, or the Refusal it gets: credentials first, then call-level faults, then the
    body's checks."""
    authorization = request.headers.get("authorization")
    if fault is not None and fault.kind == "auth":
        raise Refusal(401, "User not found.")
    if not authorization:
        raise Refusal(401, "No auth credentials found")
    if authorization != f"Bearer {state.openrouter_key}":
        raise Refusal(401, "User not found.")
    call = read_call(body, state.openrouter_catalog)
    if fault is not None and _answered_instead(fault):
        raise _rendered(fault, call)
    return call


def _answered_instead(fault: Fault) -> bool:
    """Whether the fault is an error status (a content refusal is one unless it is the
    model's own ``content_filter`` finish, which comes as a 200)."""
    if fault.kind == "content_refused":
        return fault.code != "content_filter"
    return fault.kind in _CALL_FAULTS


def _rendered(fault: Fault, call: ChatCall) -> Refusal:
    """A call-level fault in OpenRouter's words."""
    provider, model = call.spec.provider, call.model
    if fault.kind == "rate_limit":
        if fault.code == "upstream":
            refusal = Refusal(
                429,
                f"{model} is temporarily rate-limited upstream. Please retry shortly.",
                error_type="rate_limit_exceeded",
                provider_name=provider,
                raw="Resource has been exhausted (e.g. check quota).",
            )
        else:
            refusal = Refusal(429, "Rate limit exceeded", error_type="rate_limit_exceeded")
        return _waiting(refusal, fault.retry_after)
    if fault.kind == "quota":
        return _no_credits(fault)
    if fault.kind == "server_error":
        return _server_error(fault, call)
    if fault.kind == "content_refused":
        if fault.code == "policy":
            return Refusal(
                400,
                "Provider returned error",
                error_type="content_policy_violation",
                provider_name=provider,
                raw="The request was blocked by the provider's safety filters.",
            )
        return Refusal(
            403,
            f"{model} requires moderation on {provider}. Your input was flagged for "
            '"sexual/minors"',
            reasons=["sexual/minors"],
            flagged_input="Virtual try-on edit. Image 1 is a ...",
            provider_name=provider,
            model_slug=model,
        )
    assert fault.kind == "invalid_input"
    kind = fault.code or "invalid_image"
    return Refusal(400, f"Provider returned error: {kind}", error_type=kind, provider_name=provider)


def _no_credits(fault: Fault) -> Refusal:
    if fault.code == "in_flight_budget":
        refusal = Refusal(
            402,
            "This request would exceed your available credits given your current in-flight "
            "requests. Retry after in-flight requests settle, or add credits.",
            reason="in_flight_budget_exhausted",
            limit_source="openrouter_in_flight_budget",
            remedy_hint="Retry after your in-flight requests settle (see the Retry-After header).",
        )
        return _waiting(refusal, fault.retry_after)
    if fault.code == "key_limit":
        return Refusal(
            402,
            "Key limit exceeded (total limit). Manage it using https://openrouter.ai/settings/keys",
            limit_source="openrouter_key_limit",
            remedy_hint="Raise the key's credit limit or wait for it to reset.",
        )
    return Refusal(
        402,
        "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
        limit_source="openrouter_credits",
        remedy_hint="Add credits at https://openrouter.ai/settings/credits.",
    )


def _server_error(fault: Fault, call: ChatCall) -> Refusal:
    status = fault.status
    if status == 502:
        refusal = Refusal(
            502,
            "Provider returned error",
            error_type="provider_unavailable",
            provider_name=call.spec.provider,
            raw='{"error": {"code": 500, "status": "INTERNAL"}}',
        )
    elif status in (503, 529):
        refusal = Refusal(
            status,
            "No available model provider that meets your routing requirements",
            error_type="provider_overloaded",
        )
    elif status == 500:
        refusal = Refusal(500, "Internal Server Error", error_type="server")
    else:
        refusal = Refusal(status, f"HTTP {status}", error_type="server")
    return _waiting(refusal, fault.retry_after)


def _waiting(refusal: Refusal, wait: float | None) -> Refusal:
    if wait is not None:
        refusal.headers["Retry-After"] = str(math.ceil(wait))
    return refusal


def _answer(call: ChatCall, fault: Fault | None) -> dict[str, Any]:
    """The chat completion for an accepted call, shaped by a success-level fault."""
    kind = fault.kind if fault is not None else None
    choice: dict[str, Any] = {
        "logprobs": None,
        "finish_reason": "stop",
        "native_finish_reason": "STOP",
        "index": 0,
        "message": {"role": "assistant", "content": "", "refusal": None, "reasoning": None},
    }
    message = choice["message"]
    if "text" in call.modalities:
        message["content"] = "Here is the edited photo."
    if kind == "task_failed":
        choice.update(finish_reason="error", native_finish_reason=None)
        choice["error"] = {
            "code": 502,
            "message": "Provider disconnected mid-generation",
            "metadata": {"error_type": "provider_unavailable"},
        }
    elif kind == "no_image" or "image" not in call.modalities or not call.images:
        message["content"] = "I can describe the outfit, but I did not make an image this time."
    elif kind == "content_refused":  # only reached with code "content_filter"
        choice.update(finish_reason="content_filter", native_finish_reason="IMAGE_SAFETY")
        message["content"] = None
    else:
        if kind == "bad_image":
            data, mime = b"<html>not an image</html>", "image/png"
        else:
            person, *garments = (image for _, image in call.images)
            data, mime = result_image(person, garments, output_format="png"), "image/png"
        url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        message["images"] = [{"type": "image_url", "image_url": {"url": url}, "index": 0}]
    now = int(time.time())
    return {
        "id": f"gen-{now}-{secrets.token_hex(10)}",
        "provider": call.spec.provider,
        "model": call.model,
        "object": "chat.completion",
        "created": now,
        "choices": [choice],
        "system_fingerprint": None,
        "usage": {
            "prompt_tokens": 258 * len(call.images) + 40,
            "completion_tokens": 1290,
            "total_tokens": 258 * len(call.images) + 1330,
            "cost": 0.0391,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 1290},
        },
    }


def _summary(call: ChatCall) -> dict[str, Any]:
    return {
        "model": call.model,
        "modalities": call.modalities,
        "image_config": call.image_config,
        "provider": call.provider,
        "texts": call.texts,
        "image_types": [mime for mime, _ in call.images],
        "image_bytes": [len(data) for _, data in call.images],
    }
