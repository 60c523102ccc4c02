"""The adapter: one try-on as one ``POST {base_url}/images/edits`` (multipart), and its errors.

    POST {base_url}/images/edits              Authorization: Bearer API_KEY
         multipart/form-data: image[] (person, then each garment), model, prompt, n,
         output_format, size=auto, quality, input_fidelity=high (gpt-image-1 only)
      -> 200 {"created", "data": [{"b64_json"}], "output_format", "size", "usage", ...}
      -> 4xx/5xx {"error": {"message", "type", "param", "code"}}

The call is synchronous: there is no task to record or resume. Transport failures (timeouts,
refused connections) are left to the core, which maps them to ``ProviderTimeout`` and
``ProviderUnavailable``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any, Literal, cast

import httpx
import msgspec

from tryon_core.plugin import (
    IMAGE_TYPES,
    BadResponse,
    ContentRefused,
    InputImage,
    NoImage,
    OutputImage,
    ProviderConfig,
    ProviderContext,
    ProviderError,
    ProviderMisconfigured,
    ProviderRequest,
    SendOnce,
    b64decode,
    classify_status,
    error_object,
    fit_image,
    image_fits,
    json_body,
    sniff,
)
from tryon_openai.prompt import instruction

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_INPUT_BYTES",
    "UPSTREAM_MODELS",
    "OpenAIAdapter",
    "OpenAIConfig",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: The API takes files under 50 MB; anything above this is re-encoded first.
MAX_INPUT_BYTES = 25 * 1024 * 1024

#: Our slug -> (the upstream's model name, whether it takes ``input_fidelity``).
UPSTREAM_MODELS: dict[str, tuple[str, bool]] = {
    "openai/gpt-image-1": ("gpt-image-1", True),
    "openai/gpt-image-1-mini": ("gpt-image-1-mini", False),
}

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
#: 400 codes that mean the safety system refused the request.
_REFUSALS = ("moderation_blocked", "content_policy_violation")
_QUOTA = "insufficient_quota"
_MAX_MESSAGE = 500


class OpenAIConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    """``[providers.openai]``: ``api_key`` must be set when ``enabled = true``.

    ``base_url`` includes the API version (``/v1``), as the OpenAI SDKs' base URL does.
    """

    secrets = ("api_key",)

    api_key: str | None = None
    base_url: str | None = DEFAULT_BASE_URL
    organization: str | None = None
    """Sent as ``OpenAI-Organization`` when set."""
    quality: Literal["low", "medium", "high", "auto"] = "auto"


_Quality = Literal["low", "medium", "high", "auto"]
_Size = Literal["1024x1024", "1536x1024", "1024x1536", "auto"]


class MiniOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of openai/gpt-image-1-mini (the image edit API's own fields)."""

    quality: (
        Annotated[
            _Quality,
            msgspec.Meta(
                description="Rendering quality; auto lets OpenAI choose. Higher costs more "
                "at OpenAI (the gateway's price stays the model's). Default: the provider's "
                "configured quality."
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    size: Annotated[
        _Size,
        msgspec.Meta(
            description="Output size in pixels; auto follows the person photo's orientation."
        ),
    ] = "auto"


class GptImageOptions(MiniOptions, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of openai/gpt-image-1 (the image edit API's own fields)."""

    input_fidelity: Annotated[
        Literal["high", "low"],
        msgspec.Meta(
            description="How closely the inputs (the face, the garment's details) are kept; "
            "high by default for try-on."
        ),
    ] = "high"


class OpenAIAdapter:
    """Serves both GPT image models; keeps no per-request state."""

    async def run(self, request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        config: OpenAIConfig = context.config
        model, takes_fidelity = UPSTREAM_MODELS[request.model]
        options: MiniOptions = request.options or (
            GptImageOptions() if takes_fidelity else MiniOptions()
        )
        inputs = (request.person, *request.garments)
        # re-encoding is Pillow work for a thread; images that already fit need none
        images = (
            _fit_all(inputs)
            if all(map(_fits, inputs))
            else await asyncio.to_thread(_fit_all, inputs)
        )
        files = [
            ("image[]", (f"{_name(index)}.{_EXTENSIONS[content_type]}", data, content_type))
            for index, (data, content_type) in enumerate(images)
        ]
        fields = {
            "model": model,
            "prompt": instruction(
                garments=len(request.garments), category=request.category, prompt=request.prompt
            ),
            "n": str(request.n),
            "output_format": request.output_format,
            "size": options.size,
            "quality": config.quality if options.quality is msgspec.UNSET else options.quality,
        }
        if takes_fidelity:  # "high" by default: keeps the face and the garment's details
            fields["input_fidelity"] = cast(GptImageOptions, options).input_fidelity
        headers = {"Authorization": f"Bearer {config.api_key}"}
        if config.organization:
            headers["OpenAI-Organization"] = config.organization
        url = (config.base_url or DEFAULT_BASE_URL).rstrip("/") + "/images/edits"
        # the form joined in one piece, sent in one write and let go once sent
        body = SendOnce.multipart(fields, files)
        response = await context.http.post(url, content=body, headers=headers | body.headers)
        if response.status_code != 200:
            raise _failure(response, request.model, config)
        return _images(json_body(response, request.model), request.model)


def _fit_all(images: tuple[InputImage, ...]) -> list[tuple[bytes, str]]:
    return [fit_image(image, formats=IMAGE_TYPES, max_bytes=MAX_INPUT_BYTES) for image in images]


def _fits(image: InputImage) -> bool:
    return image_fits(image, formats=IMAGE_TYPES, max_bytes=MAX_INPUT_BYTES)


def _name(index: int) -> str:
    return "person" if index == 0 else f"garment-{index}"


def _images(body: Any, slug: str) -> list[OutputImage]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise BadResponse(f"{slug} answered without the images response's 'data' list.")
    outputs: list[OutputImage] = []
    for item in data:
        encoded = item.get("b64_json") if isinstance(item, dict) else None
        if not encoded:
            continue
        if not isinstance(encoded, str):
            raise BadResponse(f"{slug} answered with a b64_json that is not a string.")
        try:
            decoded = b64decode(encoded)
        except ValueError:
            raise BadResponse(f"{slug} answered with a b64_json that is not base64.") from None
        if sniff(decoded) is None:
            raise BadResponse(f"{slug} answered with b64_json that is not a PNG, JPEG or WebP.")
        outputs.append(OutputImage(data=decoded))
    if not outputs:
        raise NoImage(f"{slug} answered without an image.")
    return outputs


def _failure(response: httpx.Response, slug: str, config: OpenAIConfig) -> ProviderError:
    """The error class an HTTP error status and OpenAI's ``{"error": {...}}`` body mean."""
    error = error_object(response)
    code = error.get("code") if isinstance(error.get("code"), str) else None
    kind = error.get("type") if isinstance(error.get("type"), str) else None
    raw = error.get("message")
    message = _redact(raw, config) if isinstance(raw, str) and raw else None
    status = response.status_code
    provider_code = code or kind
    if status == 400 and code in _REFUSALS:
        return ContentRefused(
            f"{slug} refused the request: its safety system blocked it.",
            provider_code=code,
            upstream_message=message,
        )
    if status == 429 and _QUOTA in (code, kind):
        return ProviderMisconfigured(
            f"{slug}: the gateway's OpenAI account has no quota left.",
            provider_code=_QUOTA,
            upstream_message=message,
        )
    if status == 404:
        # An unknown path (a base_url without /v1) or a model this account may not use.
        return ProviderMisconfigured(
            f"{slug} answered HTTP 404: check base_url and the account's model access.",
            provider_code=provider_code or status,
            upstream_message=message,
        )
    return classify_status(response, slug, code=provider_code, message=message)


# "Incorrect API key provided: sk-ab**************yz12." names a masked key; other messages may
# quote a key or an organization id. None of it belongs in an error or a log line.
_KEY_MENTION = re.compile(r"(?i)(api key provided:\s*)[^\s.,;]+")
_KEY_LIKE = re.compile(r"\b(?:sk|sess|org)-[A-Za-z0-9_*\-]{4,}")


def _redact(message: str, config: OpenAIConfig) -> str:
    for secret in (config.api_key, config.organization):
        if secret:
            message = message.replace(secret, "[redacted]")
    message = _KEY_MENTION.sub(r"\1[redacted]", message)
    message = _KEY_LIKE.sub("[redacted]", message)
    return message[:_MAX_MESSAGE]
