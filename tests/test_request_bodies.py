"""A JSON body read for parsing is not kept by the request afterwards (tryon_core.api.bodies):
the caller's copy is the only one, so it is freed as soon as the caller drops it. And through
the gateway: once intake has decoded a data URL, its text is let go too."""

from __future__ import annotations

import base64
import gc
import sys
import tracemalloc
from typing import Any

import pytest
from litestar import Litestar, Request, post
from litestar.testing import AsyncTestClient

from tests._images import make
from tests.helpers import auth, new_key
from tryon_core.api.bodies import read_body_once
from tryon_core.provider import OutputImage, ProviderContext, ProviderRequest
from tryon_core.testing import ScriptedProvider


@post("/once")
async def once(request: Request[Any, Any, Any]) -> dict[str, int]:
    body = await read_body_once(request)
    return {"size": len(body), "holders": sys.getrefcount(body) - 1}


@post("/kept")
async def kept(request: Request[Any, Any, Any]) -> dict[str, int]:
    body = await request.body()
    return {"size": len(body), "holders": sys.getrefcount(body) - 1}


async def test_the_body_is_held_by_the_caller_alone() -> None:
    payload = b"x" * 1_000_000
    async with AsyncTestClient(Litestar([once, kept])) as client:
        read_once = (await client.post("/once", content=payload)).json()
        kept_by_litestar = (await client.post("/kept", content=payload)).json()
    assert read_once == {"size": len(payload), "holders": 1}
    assert kept_by_litestar["holders"] > 1  # what read_body_once spares: Litestar's copies


# -- through the gateway: what a request in flight holds while its model works ---------------


def _body(route: str, urls: list[bytes]) -> bytes:
    """The request body as bytes, built without ever making a ``str`` of a data URL: any such
    string alive while the model works is the gateway's."""
    if route == "chat":
        parts = b",".join(
            b'{"type":"image_url","image_url":{"url":"' + url + b'"}}' for url in urls
        )
        return (
            b'{"model":"scripted/alpha","messages":[{"role":"user","content":['
            b'{"type":"text","text":"Put this shirt on this person"},' + parts + b"]}]}"
        )
    person, garment = urls
    return (
        b'{"model":"scripted/alpha","person_images":["' + person + b'"],'
        b'"garment_images":["' + garment + b'"]}'
    )


@pytest.mark.parametrize(
    ("route", "path"),
    [("chat", "/api/v1/chat/completions"), ("native", "/api/v1/tryon")],
)
async def test_a_data_url_is_let_go_once_decoded(
    client: AsyncTestClient[Litestar], scripted: ScriptedProvider, route: str, path: str
) -> None:
    """While the model works, the request holds its images as bytes only: neither the JSON body
    nor any data URL's text (megabytes of base64 for each image in flight) is still alive."""
    key, _ = await new_key(client, credits=10)
    images = [
        make(size=(400, 400), compress_level=0),
        make(size=(400, 400), color="red", compress_level=0),
    ]
    urls = [b"data:image/png;base64," + base64.b64encode(image) for image in images]
    text_sizes = {sys.getsizeof("x" * len(url)) for url in urls}  # a data URL as a str
    body = _body(route, urls)
    held: list[int] = []
    run = scripted.run

    async def watched(request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        gc.collect()
        held.extend(
            trace.size
            for trace in tracemalloc.take_snapshot().traces
            if trace.size in text_sizes or trace.size >= len(body)
        )
        return await run(request, context)

    scripted.run = watched  # type: ignore[method-assign]
    tracemalloc.start()
    try:
        response = await client.post(
            path, content=body, headers={**auth(key), "content-type": "application/json"}
        )
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.text
    assert len(scripted.calls) == 1
    assert held == []
