"""A fake of the Gemini API's ``generateContent`` for ``gemini-2.5-flash-image``.

It checks requests as the real service does and answers in its shapes:

- ``POST /{v1|v1beta}/models/{model}:generateContent``; other paths get Google's HTML 404,
  an unknown model its JSON ``NOT_FOUND``.
- Auth: ``x-goog-api-key: KEY`` or ``?key=KEY``. No key: 403 ``PERMISSION_DENIED``; a wrong key:
  400 ``INVALID_ARGUMENT`` with an ``ErrorInfo`` of reason ``API_KEY_INVALID``.
- The body is proto3 JSON: camelCase and snake_case field names (mixed, as the official SDK
  sends them), unknown fields refused, ``inlineData.data`` in standard or URL-safe base64,
  ``mimeType`` an image type, every image decodable, the whole body at most 20 MiB.
- The answer is camelCase: a text part (when ``TEXT`` is among the response modalities, the
  default) and a PNG ``inlineData`` part sized as the 1K table says for the requested (or the
  person photo's) aspect ratio, ``finishReason: "STOP"``, ``usageMetadata``, ``modelVersion``
  and ``responseId``. The first image is the person, the others the garments.

Faults render as Gemini does; see the README for the table and for ``Fault.code`` variants.
"""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from PIL import Image, ImageOps

from tryon_core.testing import FAULT_KINDS, FakeState, Fault, create_fake_app, result_image
from tryon_gemini.fake_checks import TROUBLESHOOTING, Invalid, Parsed, Reader
from tryon_gemini.wire import ASPECT_RATIOS, closest_aspect_ratio

__all__ = ["MODELS", "TEST_API_KEY", "create_app"]

TEST_API_KEY = "test-key"
MODELS = frozenset({"gemini-2.5-flash-image", "gemini-2.5-flash-image-preview"})
_VERSIONS = frozenset({"v1", "v1beta"})
_JSON = "application/json; charset=UTF-8"
_RPC = "type.googleapis.com/google.rpc."


def create_app(*, api_key: str = TEST_API_KEY, state: FakeState | None = None) -> Litestar:
    """The fake, accepting only ``api_key`` (``"test-key"`` unless told otherwise)."""
    app = create_fake_app(
        [_generate_content],
        faults=[kind for kind in FAULT_KINDS if kind != "task_failed"],  # a sync call has no task
        state=state,
        exception_handlers={NotFoundException: _html_not_found},
    )
    app.state["gemini_api_key"] = api_key
    return app


@post("/{version:str}/models/{target:str}", status_code=200)
async def _generate_content(
    request: Request[Any, Any, Any], state: State, version: FromPath[str], target: FromPath[str]
) -> Response[bytes]:
    body = await request.body()
    model, _, method = target.partition(":")
    summary: dict[str, Any] = {"version": version, "model": model, "method": method}
    header_key = request.headers.get("x-goog-api-key")
    query_key = request.query_params.get("key")
    summary["auth"] = [name for name, v in (("header", header_key), ("query", query_key)) if v]
    parsed = Parsed()
    rejection: Response[bytes] | None = None
    if version not in _VERSIONS or method != "generateContent":
        rejection = _html_page(404, "Not Found")
    elif not header_key and not query_key:
        rejection = _rpc(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity)."
            " Please use API Key or other form of API consumer identity to call this API.",
        )
    elif any(key not in (None, state["gemini_api_key"]) for key in (header_key, query_key)):
        rejection = _bad_key()
    elif model not in MODELS:
        rejection = _rpc(
            404,
            "NOT_FOUND",
            f"models/{model} is not found for API version {version}, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their "
            "supported methods.",
        )
    else:
        reader = Reader()
        try:
            fields = await asyncio.to_thread(reader.request, request.headers, body)
        except Invalid as invalid:
            fields = {}
            rejection = _invalid(invalid.message, field=invalid.field)
        summary.update(reader.summary(fields))
        parsed = reader.parsed
    state.fake.record(request, body, **summary)
    fault = state.fake.next_fault()
    if fault is not None:
        faulty = await _fault(fault, model)
        if faulty is not None:
            return faulty
    if rejection is not None:
        return rejection
    return await asyncio.to_thread(_answer, parsed, model)


# -- answering ---------------------------------------------------------------------------------


def _answer(parsed: Parsed, model: str) -> Response[bytes]:
    image = _render(parsed.images, parsed.aspect_ratio)
    modalities = parsed.modalities or ["TEXT", "IMAGE"]
    parts: list[dict[str, Any]] = []
    if "TEXT" in modalities:
        parts.append({"text": "Here is the person wearing the garment."})
    if "IMAGE" in modalities:
        parts.append(
            {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(image).decode()}}
        )
    prompt_text = sum(len(text) for text in parsed.texts) // 4 + 1
    prompt_images = 258 * len(parsed.images)
    output = 1290 if "IMAGE" in modalities else 10
    return _json(
        200,
        {
            "candidates": [
                {
                    "content": {"parts": parts, "role": "model"},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": prompt_text + prompt_images,
                "candidatesTokenCount": output,
                "totalTokenCount": prompt_text + prompt_images + output,
                "promptTokensDetails": [
                    {"modality": "TEXT", "tokenCount": prompt_text},
                    {"modality": "IMAGE", "tokenCount": prompt_images},
                ],
                "candidatesTokensDetails": [
                    {"modality": "IMAGE" if "IMAGE" in modalities else "TEXT", "tokenCount": output}
                ],
            },
            "modelVersion": model,
            "responseId": _response_id(),
        },
    )


def _render(images: list[bytes], aspect_ratio: str | None) -> bytes:
    """A try-on stand-in at the size Gemini makes for the requested or the input's ratio."""
    if images:
        with Image.open(io.BytesIO(result_image(images[0], images[1:]))) as made:
            picture = made.convert("RGB")
        ratio = aspect_ratio or closest_aspect_ratio(*picture.size)
        picture = ImageOps.fit(picture, ASPECT_RATIOS[ratio])
    else:
        picture = Image.new("RGB", ASPECT_RATIOS[aspect_ratio or "1:1"], (128, 128, 128))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _response_id() -> str:
    return secrets.token_urlsafe(17)[:23]


def _candidate_answer(
    model: str, candidate: dict[str, Any] | None, **extra: Any
) -> Response[bytes]:
    body: dict[str, Any] = {"candidates": [candidate]} if candidate is not None else {}
    body.update(extra)
    body["usageMetadata"] = {"promptTokenCount": 1290, "totalTokenCount": 1290}
    body["modelVersion"] = model
    body["responseId"] = _response_id()
    return _json(200, body)


async def _fault(fault: Fault, model: str) -> Response[bytes] | None:
    """The fault as Gemini renders it; None when the protocol cannot express it."""
    kind = fault.kind
    if kind == "hang":
        await FakeState.hang()
    if kind == "slow_task":  # a sync call that is merely slow
        await asyncio.sleep(fault.seconds)
        return None
    if kind == "rate_limit":
        return _resource_exhausted("GenerateRequestsPerMinutePerProjectPerModel", fault.retry_after)
    if kind == "quota":
        return _resource_exhausted("GenerateRequestsPerDayPerProjectPerModel", fault.retry_after)
    if kind == "server_error":
        return _server_error(fault.status)
    if kind == "malformed":
        if fault.code == "shape":
            return _json(200, {"candidates": {"content": "not a list"}, "modelVersion": model})
        return Response(b'{"candidates": [{"content": {"parts": [', media_type=_JSON)
    if kind == "no_image":
        if fault.code:
            return _candidate_answer(model, {"finishReason": fault.code, "index": 0})
        text = "I can't make that edit, but I can describe the outfit instead."
        return _candidate_answer(
            model,
            {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP"},
        )
    if kind == "bad_image":
        data = (
            "%%not-base64%%" if fault.code == "base64" else base64.b64encode(b"no image").decode()
        )
        part = {"inlineData": {"mimeType": "image/png", "data": data}}
        return _candidate_answer(
            model, {"content": {"parts": [part], "role": "model"}, "finishReason": "STOP"}
        )
    if kind == "content_refused":
        if fault.code:
            return _candidate_answer(model, {"finishReason": fault.code, "index": 0})
        return _candidate_answer(model, None, promptFeedback={"blockReason": "PROHIBITED_CONTENT"})
    if kind == "invalid_input":
        return _invalid(f"Unable to process input image. {TROUBLESHOOTING}")
    if kind == "auth":
        return _bad_key()
    return None  # task_failed: a synchronous protocol has no task to fail


def _resource_exhausted(quota_id: str, retry_after: float | None) -> Response[bytes]:
    violation = {
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": f"{quota_id}-FreeTier",
        "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash-image"},
        "quotaValue": "10",
    }
    details: list[dict[str, Any]] = [
        {"@type": f"{_RPC}QuotaFailure", "violations": [violation]},
        {
            "@type": f"{_RPC}Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
    ]
    if retry_after is not None:
        details.append({"@type": f"{_RPC}RetryInfo", "retryDelay": _duration(retry_after)})
    return _rpc(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
        details,
    )


def _duration(seconds: float) -> str:
    """A protobuf Duration in JSON: 0, 3, 6 or 9 fractional digits."""
    nanos = round(seconds * 1e9)
    whole, fraction = divmod(nanos, 1_000_000_000)
    if not fraction:
        return f"{whole}s"
    digits = f"{fraction:09d}"
    for width in (3, 6, 9):
        if digits[width:].strip("0") == "":
            return f"{whole}.{digits[:width]}s"
    raise AssertionError("unreachable")


def _server_error(status: int) -> Response[bytes]:
    if status == 500:
        return _rpc(500, "INTERNAL", f"An internal error has occurred. {TROUBLESHOOTING}")
    if status == 503:
        return _rpc(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    if status == 504:
        return _rpc(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")
    return _html_page(status, "Server Error")


def _bad_key() -> Response[bytes]:
    message = "API key not valid. Please pass a valid API key."
    return _rpc(
        400,
        "INVALID_ARGUMENT",
        message,
        [
            {
                "@type": f"{_RPC}ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {"@type": f"{_RPC}LocalizedMessage", "locale": "en-US", "message": message},
        ],
    )


def _invalid(message: str, *, field: str | None = None) -> Response[bytes]:
    details = None
    if field is not None:
        details = [
            {
                "@type": f"{_RPC}BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        ]
    return _rpc(400, "INVALID_ARGUMENT", message, details)


def _rpc(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> Response[bytes]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return _json(code, {"error": error})


def _json(status: int, body: Any) -> Response[bytes]:
    return Response(msgspec.json.encode(body), status_code=status, media_type=_JSON)


def _html_page(status: int, title: str) -> Response[bytes]:
    page = (
        f"<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error {status} ({title})!!1"
        f"</title><p><b>{status}.</b> <ins>That's an error.</ins></p></html>"
    )
    return Response(page.encode(), status_code=status, media_type="text/html")


def _html_not_found(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[bytes]:
    return _html_page(404, "Not Found")
