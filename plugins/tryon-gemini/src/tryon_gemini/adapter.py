"""The ``gemini`` adapter: one try-on request, one ``generateContent`` call, one image.

    POST {base_url}/v1beta/models/gemini-2.5-flash-image:generateContent
    x-goog-api-key: KEY
    {"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "image/jpeg", "data": PERSON}},     # "the first image"
        {"inlineData": {"mimeType": "image/png", "data": GARMENT}},     # "the second image"
        {"text": INSTRUCTION}]}],
     "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "3:4"}}}

The answer is read in camelCase: the first ``inlineData`` image part of
``candidates[0].content.parts``. Gemini reports refusals with HTTP 200, so a 200 without an
image is always an error (``ContentRefused`` or ``NoImage``), never an empty success. Errors
come in Google's RPC envelope ``{"error": {"code", "message", "status", "details"}}``; the 429
wait hint is ``RetryInfo.retryDelay`` in ``details``, not a header.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from tryon_core.plugin import (
    BadResponse,
    ContentRefused,
    NoImage,
    OutputImage,
    ProviderConfig,
    ProviderContext,
    ProviderError,
    ProviderMisconfigured,
    ProviderRequest,
    RateLimited,
    SendOnce,
    TaskFailed,
    b64decode,
    build_for_upstream,
    classify_status,
    error_object,
    fit_image_base64,
    json_body,
    sniff,
)
from tryon_gemini.prompt import build_instruction
from tryon_gemini.wire import (
    MAX_IMAGE_BYTES,
    MAX_REQUEST_BYTES,
    GeminiOptions,
    closest_aspect_ratio,
    parse_duration,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "UPSTREAM_MODELS",
    "GeminiAdapter",
    "GeminiConfig",
    "build_body",
]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
SLUG = "google/gemini-2.5-flash-image"
#: Our slug -> the upstream's model id in the path.
UPSTREAM_MODELS: dict[str, str] = {SLUG: "gemini-2.5-flash-image"}

_INPUT_TYPES = ("image/png", "image/jpeg", "image/webp")
#: finishReason / blockReason values that mean "refused by a content policy".
_REFUSED = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)
_MESSAGE_LIMIT = 500


class GeminiConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    """``[providers.gemini]``: ``api_key`` (a Gemini API key) is required when enabled."""

    secrets = ("api_key",)

    api_key: str | None = None
    base_url: str | None = DEFAULT_BASE_URL


class GeminiAdapter:
    """Stateless: everything per attempt comes from the request and ``context.config``."""

    def __init__(self, config: GeminiConfig) -> None:
        self.config = config

    async def run(self, request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        config: GeminiConfig = context.config
        secret = config.api_key or ""
        if not secret or not config.base_url:
            raise ProviderMisconfigured("Gemini needs providers.gemini.api_key and base_url.")
        if context.task_id is not None:
            # generateContent is synchronous: the image existed only in the lost answer, and
            # calling again would be a second, separately billed generation.
            raise TaskFailed(
                "Gemini answers synchronously; an interrupted call cannot be resumed.",
                provider_code="NOT_RESUMABLE",
            )
        model = UPSTREAM_MODELS.get(request.model)
        if model is None:
            raise ProviderMisconfigured(f"The gemini provider does not serve {request.model!r}.")
        body = SendOnce(
            await build_for_upstream(
                lambda: build_body(request),
                (request.person, *request.garments),
                formats=_INPUT_TYPES,
            )
        )
        url = f"{config.base_url.rstrip('/')}/v1beta/models/{model}:generateContent"
        response = await context.http.post(
            url,
            content=body,
            headers={"x-goog-api-key": secret, "content-type": "application/json", **body.headers},
            timeout=context.timeout,
        )
        if not 200 <= response.status_code < 300:
            raise _error(response, secret)
        answer = json_body(response, request.model)
        response_id = answer.get("responseId") if isinstance(answer, dict) else None
        if isinstance(response_id, str) and response_id:
            await context.record_task(response_id)  # no task to poll: kept for the record
        return [OutputImage(data=_image(answer, secret))]


def build_body(request: ProviderRequest) -> bytes:
    """The JSON body: person, garments, then the instruction that names them in that order."""
    images = (request.person, *request.garments)
    instruction = build_instruction(
        category=request.category, garments=len(request.garments), prompt=request.prompt
    )
    # Base64 costs 4 characters per 3 bytes; keep room for the JSON and the (escaped) text.
    overhead = 16 * 1024 + 6 * len(instruction.encode())
    budget = min(MAX_IMAGE_BYTES, (MAX_REQUEST_BYTES - overhead) * 3 // 4 // len(images))
    parts: list[dict[str, Any]] = []
    for image in images:
        # standard alphabet, no data: prefix
        encoded, mime_type = fit_image_base64(image, formats=_INPUT_TYPES, max_bytes=budget)
        parts.append({"inlineData": {"mimeType": mime_type, "data": encoded}})
    parts.append({"text": instruction})
    options: GeminiOptions = request.options or GeminiOptions()
    ratio = (
        closest_aspect_ratio(request.person.width, request.person.height)
        if options.aspect_ratio is msgspec.UNSET
        else options.aspect_ratio
    )
    return msgspec.json.encode(
        {
            "contents": [{"role": "user", "parts": parts}],
            "generationConfig": {
                "responseModalities": ["IMAGE"],
                "imageConfig": {"aspectRatio": ratio},
            },
        }
    )


def _image(answer: Any, secret: str) -> bytes:
    """The first image of the first candidate, or the error its absence means."""
    if not isinstance(answer, dict):
        raise BadResponse("Gemini answered with JSON that is not an object.")
    feedback = answer.get("promptFeedback")
    if isinstance(feedback, dict):
        reason = feedback.get("blockReason")
        if isinstance(reason, str) and reason and reason != "BLOCKED_REASON_UNSPECIFIED":
            raise ContentRefused(
                "Gemini refused the request under its content policy.",
                provider_code=reason,
                upstream_message=_clean(feedback.get("blockReasonMessage"), secret),
            )
    candidates = answer.get("candidates")
    if candidates is None or candidates == []:
        if not answer.keys() & {"promptFeedback", "usageMetadata", "modelVersion", "responseId"}:
            raise BadResponse("Gemini answered without candidates.")
        raise NoImage("Gemini answered without a candidate.", provider_code="NO_CANDIDATES")
    if not isinstance(candidates, list) or not isinstance(candidates[0], dict):
        raise BadResponse("Gemini's candidates are not a list of objects.")
    candidate = candidates[0]
    content = candidate.get("content") or {}
    parts = (content.get("parts") or []) if isinstance(content, dict) else None
    if not isinstance(parts, list) or not all(isinstance(part, dict) for part in parts):
        raise BadResponse("Gemini's candidate content is not a list of parts.")
    texts: list[str] = []
    for part in parts:
        if part.get("thought") is True:
            continue  # an interim "thinking" image or text, not the answer
        inline = part.get("inlineData")
        if isinstance(inline, dict) and str(inline.get("mimeType", "")).startswith("image/"):
            return _decode_image(inline.get("data"))
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
    finish = candidate.get("finishReason")
    finish = finish if isinstance(finish, str) and finish else None
    said = candidate.get("finishMessage") or " ".join(texts)
    if finish in _REFUSED:
        raise ContentRefused(
            "Gemini refused to make this image under its content policy.",
            provider_code=finish,
            upstream_message=_clean(said, secret),
        )
    raise NoImage(
        f"Gemini finished ({finish or 'no reason given'}) without an image.",
        provider_code=finish,
        upstream_message=_clean(said, secret),
    )


def _decode_image(data: Any) -> bytes:
    """Image bytes from base64 (standard, as Google sends; URL-safe tolerated)."""
    if isinstance(data, str) and data:
        bare = data.rstrip("=").replace("-", "+").replace("_", "/")
        try:
            decoded = b64decode(bare + "=" * (-len(bare) % 4))
        except ValueError:
            pass
        else:
            if sniff(decoded) is None:
                raise BadResponse("Gemini's image part holds no PNG, JPEG or WebP image.")
            return decoded
    raise BadResponse("Gemini's image part is not valid base64 data.")


def _error(response: httpx.Response, secret: str) -> ProviderError:
    """The typed error for a non-2xx answer in Google's RPC envelope (or without one)."""
    status = response.status_code
    error = error_object(response)
    rpc_status = error.get("status") if isinstance(error.get("status"), str) else None
    message = _clean(error.get("message"), secret)
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    reasons = {d.get("reason") for d in details if _is(d, "ErrorInfo")}
    if "API_KEY_INVALID" in reasons or (status == 400 and "API key not valid" in (message or "")):
        return ProviderMisconfigured(
            "Gemini refused the gateway's API key.",
            provider_code="API_KEY_INVALID",
            upstream_message=message,
        )
    if status in (401, 403, 404) or (status == 400 and rpc_status == "FAILED_PRECONDITION"):
        # The key's project, the model name or the region: the gateway's setup, not the input.
        what = {401: "credentials", 403: "access", 404: "model"}.get(status, "setup")
        label = f"HTTP {status}" + (f" {rpc_status}" if rpc_status else "")
        return ProviderMisconfigured(
            f"Gemini refused the gateway's {what} ({label}).",
            provider_code=rpc_status or status,
            upstream_message=message,
        )
    if status == 429:
        quotas = [
            str(v.get("quotaId"))
            for d in details
            if _is(d, "QuotaFailure")
            for v in d.get("violations") or []
            if isinstance(v, dict) and v.get("quotaId")
        ]
        if quotas:
            message = _clean(f"{message or ''} (quota: {', '.join(quotas)})", secret)
        delays = [parse_duration(d.get("retryDelay")) for d in details if _is(d, "RetryInfo")]
        return RateLimited(
            "Gemini is rate limiting this gateway, or its quota is used up.",
            provider_code=rpc_status or status,
            upstream_message=message,
            retry_after=next((d for d in delays if d is not None), None),
        )
    return classify_status(response, SLUG, code=rpc_status or status, message=message)


def _is(detail: dict[str, Any], kind: str) -> bool:
    return str(detail.get("@type", "")).endswith(f"google.rpc.{kind}")


def _clean(text: Any, secret: str) -> str | None:
    """The upstream's words, bounded, with the API key cut out should it ever be echoed."""
    if not isinstance(text, str) or not text.strip():
        return None
    if secret:
        text = text.replace(secret, "[redacted]")
    return " ".join(text.split())[:_MESSAGE_LIMIT]
