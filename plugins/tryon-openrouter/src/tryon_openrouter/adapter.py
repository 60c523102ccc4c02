"""The ``openrouter`` adapter: one try-on, one chat completion, the images of its answer.

    POST {base_url}/chat/completions     Authorization: Bearer sk-or-…
    -> 200 {"id": "gen-…", "choices": [{"message": {"images": [{"type": "image_url",
            "image_url": {"url": "data:image/png;base64,…"}}]}, "finish_reason": "stop"}]}
    -> 4xx/5xx {"error": {"code", "message", "metadata"}}

The call is synchronous: the generation id (``gen-…``) is recorded for the attempt's record
only, as there is no task to poll or resume. Transport failures (timeouts, refused
connections) are left to the core, which maps them to ``ProviderTimeout`` and
``ProviderUnavailable``.
"""

from __future__ import annotations

from tryon_core.plugin import (
    IMAGE_TYPES,
    OutputImage,
    ProviderContext,
    ProviderMisconfigured,
    ProviderRequest,
    SendOnce,
    build_for_upstream,
    json_body,
)
from tryon_openrouter.answer import images_of
from tryon_openrouter.config import DEFAULT_BASE_URL, OpenRouterConfig
from tryon_openrouter.errors import http_failure
from tryon_openrouter.request import build_body, headers

__all__ = ["OpenRouterAdapter"]


class OpenRouterAdapter:
    """Serves every configured model; keeps no per-request state."""

    def __init__(self, config: OpenRouterConfig) -> None:
        self.config = config

    async def run(self, request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        config: OpenRouterConfig = context.config
        model = config.models.get(request.model)
        if model is None:
            raise ProviderMisconfigured(
                f"{request.model} is not among [providers.openrouter.models]."
            )
        body = SendOnce(
            await build_for_upstream(
                lambda: build_body(request, model, config),
                (request.person, *request.garments),
                formats=IMAGE_TYPES,
            )
        )
        base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        response = await context.http.post(
            f"{base}/chat/completions",
            content=body,
            headers={**headers(config), **body.headers},
            timeout=context.timeout,
        )
        if not response.is_success:
            raise http_failure(response, request.model)
        answer = json_body(response, request.model)
        generation = answer.get("id") if isinstance(answer, dict) else None
        if isinstance(generation, str) and generation:
            await context.record_task(generation)  # OpenRouter's generation id, for the record
        return await images_of(answer, request.model, request.n, context)
