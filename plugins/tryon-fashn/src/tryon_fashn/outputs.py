"""A completed prediction's ``output``: data URIs (``return_base64``) or CDN links.

A data URI is decoded here; its prefix follows ``output_format``
(``data:image/png;base64,...``). A link is downloaded through ``context.fetch``, behind the
egress guard, never with the API client (it must not carry the API key).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tryon_core.plugin import BadResponse, NoImage, OutputImage, ProviderContext, b64decode

__all__ = ["collect"]

_DATA_URI = re.compile(r"data:image/[a-z.+-]+;base64,", re.IGNORECASE)


async def collect(
    output: Any, wanted: int, context: ProviderContext, slug: str
) -> list[OutputImage]:
    """At most ``wanted`` images of ``output``, in FASHN's order."""
    if not output:
        raise NoImage(f"{slug}: FASHN completed the prediction without an image.")
    if not isinstance(output, list) or not all(isinstance(item, str) for item in output):
        raise BadResponse(f"{slug}: FASHN's output is not a list of strings.")
    images = await asyncio.gather(*(_image(item, context, slug) for item in output[:wanted]))
    return [OutputImage(data=data) for data in images]


async def _image(item: str, context: ProviderContext, slug: str) -> bytes:
    prefix = _DATA_URI.match(item)
    if prefix is not None:
        try:
            return b64decode(item[prefix.end() :])
        except ValueError:
            raise BadResponse(f"{slug}: FASHN sent a data URI whose base64 is broken.") from None
    if item.startswith(("https://", "http://")):
        return await context.fetch(item)
    raise BadResponse(f"{slug}: FASHN sent an output that is neither a data URI nor a link.")
