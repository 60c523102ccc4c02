"""The adapter: one request through fal's queue, for whichever app the model is.

Submit (unless the core resumes a request fal already accepted), record the request id,
poll until ``COMPLETED``, read the output JSON, download every image URL at once through
``context.fetch`` (the URLs are fal's CDN links; data URIs are decoded here).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from tryon_core.plugin import (
    BadResponse,
    ContentRefused,
    NoImage,
    OutputImage,
    ProviderContext,
    ProviderMisconfigured,
    ProviderRequest,
    b64decode,
)
from tryon_fal.config import FalConfig
from tryon_fal.endpoints import ENDPOINTS, Endpoint
from tryon_fal.queue import Queue

__all__ = ["FalAdapter", "image_urls"]


class _File(msgspec.Struct):
    url: str


class _Images(msgspec.Struct):
    images: list[_File] | None = None
    has_nsfw_concepts: list[bool] | None = None


class _Image(msgspec.Struct):
    image: _File | None = None
    has_nsfw_concepts: bool | None = None


class FalAdapter:
    """Serves every fal model; the per-model differences live in ``ENDPOINTS``."""

    def __init__(self, config: FalConfig) -> None:
        del config  # each attempt reads context.config

    async def run(self, request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        endpoint = _endpoint(request.model)
        config: FalConfig = context.config
        queue = Queue(context.http, config, endpoint_id=endpoint.endpoint_id, slug=request.model)
        if context.task_id:
            handle = queue.handle(context.task_id)
        else:
            body = await asyncio.to_thread(_input_json, endpoint, request, config)
            handle = await queue.submit(body)
            del body  # megabytes of base64, not to be held while the queue works
            await context.record_task(handle.request_id)
        await queue.wait(handle, context.report_state)
        urls = image_urls(endpoint, await queue.result(handle), request.model)
        images = await asyncio.gather(*(_download(url, context) for url in urls[: request.n]))
        return [OutputImage(data=data) for data in images]

    async def cancel(self, model: str, task_id: str, context: ProviderContext) -> bool:
        """fal's queue can drop a request it has not finished (``PUT …/requests/{id}/cancel``)."""
        endpoint = _endpoint(model)
        queue = Queue(context.http, context.config, endpoint_id=endpoint.endpoint_id, slug=model)
        return await queue.cancel(queue.handle(task_id))


def _endpoint(model: str) -> Endpoint:
    endpoint = ENDPOINTS.get(model)
    if endpoint is None:
        raise ProviderMisconfigured(f"{model} is not a fal model.")
    return endpoint


def _input_json(endpoint: Endpoint, request: ProviderRequest, config: FalConfig) -> bytes:
    arguments = endpoint.arguments(request, config, endpoint.inputs(request))
    return msgspec.json.encode(arguments)


def image_urls(endpoint: Endpoint, output: dict[str, Any], slug: str) -> list[str]:
    """The output's image URLs, leaving out any the app's safety checker flagged."""
    try:
        if endpoint.output == "images":
            many = msgspec.convert(output, _Images)
            files, flags = many.images or [], many.has_nsfw_concepts or []
        else:
            one = msgspec.convert(output, _Image)
            files = [one.image] if one.image else []
            flags = [] if one.has_nsfw_concepts is None else [one.has_nsfw_concepts]
    except msgspec.ValidationError:
        raise BadResponse(f"{slug}: fal's output has an unexpected shape.") from None
    if not files:
        raise NoImage(f"{slug}: fal finished the request without an image.")
    kept = [f.url for i, f in enumerate(files) if not (i < len(flags) and flags[i])]
    if not kept:
        raise ContentRefused(
            f"{slug}: fal's safety checker flagged every image it made.",
            provider_code="has_nsfw_concepts",
        )
    return kept


async def _download(url: str, context: ProviderContext) -> bytes:
    if not url.startswith("data:"):
        return await context.fetch(url)
    _, _, payload = url.partition(",")
    try:
        return b64decode(payload)
    except ValueError:
        raise BadResponse("fal returned a data URI that is not base64.") from None
