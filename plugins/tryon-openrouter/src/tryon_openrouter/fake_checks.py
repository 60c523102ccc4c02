"""How the fake reads a chat completion request, refusing what OpenRouter refuses.

Sources: OpenRouterTeam/docs ``openapi/openapi.yaml`` (``ChatRequest``, ``ChatMessages``,
``ChatContentItems``, ``ImageConfig``, ``ProviderPreferences``), the image-generation and
image-inputs guides, and the errors guide. Refusals use OpenRouter's envelope
``{"error": {"code": STATUS, "message", "metadata"}}`` with the HTTP status equal to ``code``.

Where OpenRouter would pass a field through without a word, the fake is stricter: it refuses
a top-level field that ``ChatRequest`` does not document, so that an adapter's typo is caught.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

__all__ = ["CATALOG", "ChatCall", "FakeModel", "Refusal", "read_call"]

_STANDARD_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
_EXTENDED_RATIOS = (*_STANDARD_RATIOS, "1:4", "4:1", "1:8", "8:1")
_INPUT_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}


@dataclass(frozen=True)
class FakeModel:
    """What the fake knows of one OpenRouter model."""

    outputs: tuple[str, ...]
    provider: str
    aspect_ratios: tuple[str, ...] = _STANDARD_RATIOS
    image_sizes: tuple[str, ...] = ("1K", "2K", "4K")


#: OpenRouter slugs the fake serves, with their output modalities (image-only models refuse
#: ``text``) and their ``image_config`` values.
CATALOG: dict[str, FakeModel] = {
    "google/gemini-2.5-flash-image": FakeModel(
        ("image", "text"), "Google AI Studio", image_sizes=("1K",)
    ),
    "google/gemini-2.5-flash-image-preview": FakeModel(
        ("image", "text"), "Google AI Studio", image_sizes=("1K",)
    ),
    "google/gemini-3-pro-image-preview": FakeModel(("image", "text"), "Google AI Studio"),
    "google/gemini-3.1-flash-image-preview": FakeModel(
        ("image", "text"), "Google AI Studio", _EXTENDED_RATIOS, ("0.5K", "1K", "2K", "4K")
    ),
    "openai/gpt-5-image": FakeModel(("image", "text"), "OpenAI"),
    "openai/gpt-5-image-mini": FakeModel(("image", "text"), "OpenAI"),
    "black-forest-labs/flux.2-pro": FakeModel(("image",), "Black Forest Labs"),
    "black-forest-labs/flux.2-flex": FakeModel(("image",), "Black Forest Labs"),
    "bytedance-seed/seedream-4.5": FakeModel(("image",), "Seed"),
    "openai/gpt-4o": FakeModel(("text",), "OpenAI"),  # a text model: asking it for images fails
}

_REQUEST_FIELDS = frozenset(
    {
        "cache_control", "debug", "frequency_penalty", "image_config", "logit_bias", "logprobs",
        "max_completion_tokens", "max_tokens", "messages", "metadata", "min_p", "modalities",
        "model", "models", "parallel_tool_calls", "plugins", "prediction", "presence_penalty",
        "prompt_cache_key", "prompt_cache_options", "provider", "reasoning", "reasoning_effort",
        "repetition_penalty", "response_format", "route", "seed", "service_tier", "session_id",
        "stop", "stop_server_tools_when", "stream", "stream_options", "temperature",
        "tool_choice", "tools", "top_a", "top_k", "top_logprobs", "top_p", "trace", "user",
        "usage", "transforms",
    }
)  # fmt: skip
_PROVIDER_FIELDS = frozenset(
    {
        "allow_fallbacks", "data_collection", "enforce_distillable_text", "ignore", "max_price",
        "only", "order", "preferred_max_latency", "preferred_min_throughput", "quantizations",
        "require_parameters", "sort", "zdr",
    }
)  # fmt: skip
_ROLES = frozenset({"system", "user", "assistant", "developer", "tool"})
_MODALITIES = frozenset({"text", "image", "audio"})


class Refusal(Exception):
    """An answer other than success, in OpenRouter's error envelope."""

    def __init__(self, status: int, message: str, **metadata: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error: dict[str, Any] = {"code": status, "message": message}
        if metadata:
            self.error["metadata"] = metadata
        self.headers: dict[str, str] = {}


@dataclass
class ChatCall:
    """A request the fake accepted, as it will answer it."""

    model: str
    spec: FakeModel
    modalities: list[str]
    image_config: dict[str, Any]
    provider: dict[str, Any]
    texts: list[str] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (declared type, bytes)


def read_call(body: bytes, catalog: dict[str, FakeModel]) -> ChatCall:
    """The request in ``body``, or the Refusal OpenRouter would answer with."""
    try:
        data = json.loads(body)
    except ValueError:
        raise _invalid("Invalid JSON in request body.") from None
    if not isinstance(data, dict):
        raise _invalid("The request body must be a JSON object.")
    unknown = sorted(set(data) - _REQUEST_FIELDS)
    if unknown:
        raise _invalid(f"Unrecognized key(s) in object: {', '.join(map(repr, unknown))}")
    if data.get("stream"):
        raise _invalid("This fake of OpenRouter answers only non-streaming requests.")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("No model given: this fake has no account default model.")
    spec = catalog.get(model.partition(":")[0])
    if spec is None:
        raise _invalid(f"{model} is not a valid model ID")
    modalities = _modalities(data.get("modalities"), model, spec)
    call = ChatCall(
        model=model,
        spec=spec,
        modalities=modalities,
        image_config=_image_config(data.get("image_config"), spec),
        provider=_provider(data.get("provider")),
    )
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid('Input required: specify "prompt" or "messages"')
    for index, message in enumerate(messages):
        _read_message(message, index, call)
    return call


def _modalities(value: Any, model: str, spec: FakeModel) -> list[str]:
    if value is None:
        return ["text"]
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise _invalid("modalities must be an array of strings.")
    bad = [m for m in value if m not in _MODALITIES]
    if bad:
        raise _invalid(f"Invalid modality {bad[0]!r}: expected 'text', 'image' or 'audio'.")
    if any(m not in spec.outputs for m in value):
        raise Refusal(
            404,
            "No endpoints found that support the requested output modalities: " + ", ".join(value),
        )
    return list(value)


def _image_config(value: Any, spec: FakeModel) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid("image_config must be an object.")
    for key, item in value.items():
        if not isinstance(item, str | int | float | list) or isinstance(item, bool):
            raise _invalid(f"image_config.{key} must be a string, a number or an array.")
    ratio = value.get("aspect_ratio")
    if ratio is not None and ratio not in spec.aspect_ratios:
        raise _invalid(
            f"Invalid aspect_ratio {ratio!r}: supported are {', '.join(spec.aspect_ratios)}."
        )
    size = value.get("image_size")
    if size is not None and size not in spec.image_sizes:
        raise _invalid(f"Invalid image_size {size!r}: supported are {', '.join(spec.image_sizes)}.")
    return dict(value)


def _provider(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid("provider must be an object.")
    unknown = sorted(set(value) - _PROVIDER_FIELDS)
    if unknown:
        raise _invalid(f"Unrecognized key(s) in object: {', '.join(map(repr, unknown))}")
    if value.get("data_collection") not in (None, "allow", "deny"):
        raise _invalid("provider.data_collection must be 'allow' or 'deny'.")
    return dict(value)


def _read_message(message: Any, index: int, call: ChatCall) -> None:
    where = f"messages[{index}]"
    if not isinstance(message, dict) or message.get("role") not in _ROLES:
        raise _invalid(f"{where}.role must be one of {', '.join(sorted(_ROLES))}.")
    content = message.get("content")
    if isinstance(content, str):
        call.texts.append(content)
        return
    if not isinstance(content, list) or not content:
        raise _invalid(f"{where}.content must be a string or a non-empty array of parts.")
    for number, part in enumerate(content):
        _read_part(part, f"{where}.content[{number}]", call)


def _read_part(part: Any, where: str, call: ChatCall) -> None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise _invalid(f"{where}.text must be a string.")
        call.texts.append(part["text"])
    elif kind == "image_url":
        holder = part.get("image_url")
        url = holder.get("url") if isinstance(holder, dict) else None
        if not isinstance(url, str):
            raise _invalid(f"{where}.image_url.url must be a string.")
        detail = holder.get("detail") if isinstance(holder, dict) else None
        if detail not in (None, "auto", "low", "high", "original"):
            raise _invalid(f"{where}.image_url.detail must be auto, low, high or original.")
        call.images.append(_image(url, where))
    else:
        raise _invalid(f"{where}.type must be 'text' or 'image_url' (as this fake serves).")


def _image(url: str, where: str) -> tuple[str, bytes]:
    if url.startswith(("https://", "http://")):
        raise _bad_image("image_download_failed", f"{where}: the fake cannot download {url[:60]}.")
    header, comma, encoded = url.partition(",")
    declared = header.removeprefix("data:").removesuffix(";base64")
    if not (comma and header.startswith("data:") and header.endswith(";base64")):
        raise _bad_image("invalid_image", f"{where}: not a URL nor a base64 data URL.")
    if declared not in _INPUT_TYPES:
        raise _bad_image(
            "unsupported_image_format",
            f"{where}: {declared or 'no type'} is not image/png, image/jpeg, image/webp or "
            "image/gif.",
        )
    try:
        data = base64.b64decode(encoded, validate=True)
        with Image.open(io.BytesIO(data)) as image:
            actual = image.format
            image.load()
    except (binascii.Error, ValueError, OSError):
        raise _bad_image("invalid_image", f"{where}: the image cannot be decoded.") from None
    if actual != _INPUT_TYPES[declared]:
        raise _bad_image("invalid_image", f"{where}: the data URL says {declared}, not {actual}.")
    return declared, data


def _invalid(message: str) -> Refusal:
    return Refusal(400, message, error_type="invalid_request")


def _bad_image(kind: str, message: str) -> Refusal:
    return Refusal(400, message, error_type=kind)
