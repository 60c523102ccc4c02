"""A JSON body read for parsing is not kept by the request afterwards (tryon_core.api.bodies):
the caller's copy is the only one, so it is freed as soon as the caller drops it."""

from __future__ import annotations

import sys
from typing import Any

from litestar import Litestar, Request, post
from litestar.testing import AsyncTestClient

from tryon_core.api.bodies import read_body_once


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
