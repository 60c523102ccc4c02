"""Helpers for the console's tests: sign in as a browser would, read a page's CSRF token,
and every console route from the app's own route table."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_DATA = re.compile(r'data-csrf="([^"]+)"')


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
