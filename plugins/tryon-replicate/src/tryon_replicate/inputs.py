"""The ``input`` object of a prediction, from a request and the model's entry.

Photos go as data URLs (``data:image/jpeg;base64,…``), the way Replicate takes a file inside
the request, nothing uploaded or stored. Replicate recommends data URLs for files under about
1 MB; a photo larger than ``max_image_bytes`` is re-encoded and shrunk until it fits (the
Files API, which would keep a copy on Replicate, is not used).
"""

from __future__ import annotations

from typing import Any

import msgspec

from tryon_core.plugin import (
    IMAGE_TYPES,
    InputImage,
    ProviderRequest,
    build_for_upstream,
    fit_image_base64,
)
from tryon_replicate.config import HostedModel

__all__ = ["data_url", "prediction_input"]


async def prediction_input(
    hosted: HostedModel, request: ProviderRequest, *, max_image_bytes: int
) -> dict[str, Any]:
    """The input JSON object; the photos are encoded in a thread when that is worth it."""
    images = (request.person, request.garments[0])

    def build() -> dict[str, Any]:
        return _input(hosted, request, max_image_bytes)

    body: dict[str, Any] = await build_for_upstream(build, images, formats=IMAGE_TYPES)
    return body


def _input(hosted: HostedModel, request: ProviderRequest, max_image_bytes: int) -> dict[str, Any]:
    body = dict(hosted.inputs)
    body[hosted.person] = data_url(request.person, max_image_bytes)
    body[hosted.garment] = data_url(request.garments[0], max_image_bytes)
    if hosted.category is not None and request.category in hosted.categories:
        body[hosted.category] = hosted.categories[request.category]
    if hosted.prompt is not None and request.prompt:
        body[hosted.prompt] = request.prompt
    if hosted.seed is not None and request.seed is not None:
        body[hosted.seed] = request.seed
    if hosted.outputs is not None:
        body[hosted.outputs] = request.n
    if request.options is not None:
        body.update(msgspec.to_builtins(request.options))  # UNSET options are left out
    return body


def data_url(image: InputImage, max_bytes: int) -> str:
    """The photo as a data URL of at most ``max_bytes`` bytes of image."""
    text, content_type = fit_image_base64(image, formats=IMAGE_TYPES, max_bytes=max_bytes)
    return f"data:{content_type};base64,{text}"
