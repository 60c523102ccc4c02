"""Intake: turn each image source (upload, data URL, http(s) URL) into a validated image."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Sequence

from tryon_core.decode_budget import PixelBudget
from tryon_core.egress import GuardedFetcher
from tryon_core.errors import InvalidRequest
from tryon_core.image_proof import proven_on_loop
from tryon_core.imaging import ImageLimits, decode_data_url, decodes_quickly, inspect, load_image
from tryon_core.provider import InputImage
from tryon_core.request import ImageSource
from tryon_core.uninterrupted import uninterrupted

__all__ = ["ingest", "ingest_all"]


async def ingest(
    source: ImageSource,
    *,
    fetcher: GuardedFetcher,
    limits: ImageLimits,
    budget: PixelBudget | None = None,
) -> InputImage:
    """Read one image and check its header; then prove it whole: on the event loop if it is
    tiny or a PNG to pass on as it is (a step at a time), else in a thread, within ``budget``."""
    if source.data is not None:
        data = source.data
    elif source.url is None or not source.url.strip():
        raise InvalidRequest("An image must be a URL or an uploaded file.", param=source.param)
    elif (text := source.take_data_url()) is not None:
        # decoded, the text is let go: only ``data`` stays, for as long as the request runs
        data = decode_data_url(text, param=source.param, max_bytes=limits.max_bytes)
        del text
    else:
        data = await fetcher.fetch(source.url.strip(), param=source.param)
    kind, width, height = inspect(data, param=source.param, limits=limits)
    if decodes_quickly(data, pixels=width * height):
        image = load_image(data, param=source.param, limits=limits)
    elif await proven_on_loop(data, kind, (width, height)):  # a PNG passed on as it is
        image = InputImage(data=data, content_type=kind, width=width, height=height)
    else:
        # a PNG's proof has said no on the loop already: the thread decodes it in full
        decode = functools.partial(
            load_image, data, param=source.param, limits=limits, prove=kind != "image/png"
        )
        async with budget.hold(width * height) if budget else contextlib.nullcontext():
            # the thread cannot be stopped: its pixels stay held until it has finished
            image = await uninterrupted(asyncio.to_thread(decode))
    return image


async def ingest_all(
    sources: Sequence[ImageSource],
    *,
    fetcher: GuardedFetcher,
    limits: ImageLimits,
    budget: PixelBudget | None = None,
) -> list[InputImage]:
    """All sources at once; the first failure cancels the rest and is raised as itself."""
    tasks = [
        asyncio.ensure_future(ingest(s, fetcher=fetcher, limits=limits, budget=budget))
        for s in sources
    ]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
