"""The chat completion a try-on becomes: ``POST {base_url}/chat/completions``.

    {"model": UPSTREAM,
     "messages": [{"role": "user", "content": [
         {"type": "text", "text": INSTRUCTION},
         {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,PERSON"}},
         {"type": "image_url", "image_url": {"url": "data:image/png;base64,GARMENT"}}]}],
     "modalities": ["image", "text"],
     "image_config": {"aspect_ratio": "3:4"},
     "provider": {"data_collection": "deny"},
     "stream": false}

Text first, then the images, as OpenRouter recommends; ``image_config`` and ``provider`` only
when there is something to say.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tryon_core.plugin import IMAGE_TYPES, ProviderRequest, fit_image_base64
from tryon_openrouter.config import ConfiguredModel, OpenRouterConfig
from tryon_openrouter.options import nearest_aspect_ratio
from tryon_openrouter.prompt import instruction

__all__ = ["MAX_IMAGE_BYTES", "TOTAL_IMAGE_BYTES", "build_body", "headers", "image_config"]

#: Per image: larger inputs are re-encoded (JPEG, or PNG with transparency) and shrunk.
MAX_IMAGE_BYTES = 5 * 1024 * 1024
#: All images of one request together, before base64: keeps the body under the 20 MB that
#: providers behind OpenRouter take (Gemini's inline-data limit).
TOTAL_IMAGE_BYTES = 12 * 1024 * 1024


def build_body(request: ProviderRequest, model: ConfiguredModel, config: OpenRouterConfig) -> bytes:
    """The JSON body for ``model``: CPU-bound when an image must be re-encoded."""
    images = (request.person, *request.garments)
    budget = min(MAX_IMAGE_BYTES, TOTAL_IMAGE_BYTES // len(images))
    content: list[dict[str, Any]] = [
        {
            "type": "text",
            "text": instruction(
                category=request.category, garments=len(request.garments), prompt=request.prompt
            ),
        }
    ]
    for image in images:
        encoded, content_type = fit_image_base64(image, formats=IMAGE_TYPES, max_bytes=budget)
        url = f"data:{content_type};base64,{encoded}"
        content.append({"type": "image_url", "image_url": {"url": url}})
    body: dict[str, Any] = {
        "model": model.upstream,
        "messages": [{"role": "user", "content": content}],
        "modalities": list(model.modalities),
    }
    chosen = image_config(request, model)
    if chosen:
        body["image_config"] = chosen
    if config.data_collection is not None:
        body["provider"] = {"data_collection": config.data_collection}
    body["stream"] = False
    return msgspec.json.encode(body)


def image_config(request: ProviderRequest, model: ConfiguredModel) -> dict[str, Any]:
    """The client's options, plus the person photo's ratio when the model takes a ratio and
    the client named none (OpenRouter's default, 1:1, would crop a portrait)."""
    chosen: dict[str, Any] = {}
    if "aspect_ratio" in model.image_config:
        chosen["aspect_ratio"] = nearest_aspect_ratio(request.person.width, request.person.height)
    if request.options is not None:
        chosen.update(msgspec.to_builtins(request.options))
    return chosen


def headers(config: OpenRouterConfig) -> dict[str, str]:
    """The key, and OpenRouter's optional app attribution."""
    sent = {
        "Authorization": f"Bearer {config.api_key}",
        "Content-Type": "application/json",
    }
    if config.http_referer:
        sent["HTTP-Referer"] = config.http_referer
    if config.app_title:
        sent["X-OpenRouter-Title"] = config.app_title
    return sent
