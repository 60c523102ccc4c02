"""Helpers for the console's tests: sign in as a browser would, read a page's CSRF token,
and every console route from the app's own route table."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_DATA = re.compile(r'data-csrf="([^"]+)"')
SAMPLE_FORM = {"person_sample": (None, "person.jpg"), "garment_sample": (None, "garment.png")}


async def page(client: Client, path: str, status: int = 200) -> httpx.Response:
    response = await client.get(path, follow_redirects=False)
    assert response.status_code == status, (path, response.status_code, response.text[:2000])
    return response


async def csrf(client: Client, path: str = "/sign-in") -> str:
    """The CSRF token of the forms on ``path``, as the browser holding this client's
    cookies would see it."""
    text = (await page(client, path)).text
    found = CSRF.search(text) or CSRF_DATA.search(text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


async def post_form(
    client: Client, path: str, fields: dict[str, str], *, from_page: str | None = None
) -> httpx.Response:
    """Submit a form of ``from_page`` (default: ``path``) with its CSRF token."""
    token = await csrf(client, from_page or path)
    return await client.post(path, data={"csrf_token": token, **fields}, follow_redirects=False)


async def sign_in(client: Client, key: str) -> httpx.Response:
    response = await post_form(client, "/sign-in", {"api_key": key})
    assert response.status_code == 303, response.text
    return response


def console_routes(app: Litestar) -> Iterator[tuple[str, str, Any]]:
    """(method, path, handler) of every console route, from the app's route table."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if handler.opt.get("console"):
                for method in sorted(handler.http_methods):
                    yield method, route.path, handler


def fill(path: str, values: dict[str, str]) -> str:
    """``/keys/{key_id:str}/revoke`` with ``key_id`` from ``values``."""
    return re.sub(r"\{(\w+):\w+\}", lambda m: values[m.group(1)], path)


async def run(client: Client, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """Submit a playground job (the sample photos, and ``fields``); returns the 202 body."""
    response = await client.post(
        "/playground/jobs",
        files={**SAMPLE_FORM, **(fields or {})},
        headers={"X-CSRF-Token": await csrf(client, "/playground")},
    )
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


async def finished(client: Client, job_id: str, within: float = 20.0) -> dict[str, Any]:
    """Poll the console's own job endpoint until the job ends."""
    end = time.monotonic() + within
    while True:
        response = await client.get(f"/playground/jobs/{job_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("completed", "failed"):
            return body
        assert time.monotonic() < end, body
        await asyncio.sleep(0.05)
