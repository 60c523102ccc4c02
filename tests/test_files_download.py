"""GET and HEAD /api/v1/files/{id} through a real server: one reading of a signed link, HEAD
answering as GET without the body, and the headers that keep a file inert in a browser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import Litestar

from tests.helpers import auth, live_server, new_key

SAFE_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "cross-origin-resource-policy": "cross-origin",
    "cache-control": "private, max-age=3600",
}


class Gateway:
    def __init__(self, http: httpx.AsyncClient, base: str, key: str, link: str) -> None:
        self.http, self.base, self.key = http, base, key
        url = urlsplit(link)
        self.path, self.query = url.path, url.query
        self.file_id = url.path.rsplit("/", 1)[1]


@pytest.fixture
async def gateway(
    make_app: Callable[..., Litestar], database_url: str, tryon_body: Callable[..., Any]
) -> AsyncIterator[Gateway]:
    """A live gateway holding one result file; its owner's key and signed link."""
    app = make_app(database_url)
    async with live_server(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        key, _ = await new_key(app)
        made = await http.post("/api/v1/tryon", json=tryon_body(), headers=auth(key))
        assert made.status_code == 200, made.text
        yield Gateway(http, base, key, made.json()["images"][0]["url"])


def duplicated(query: str) -> list[tuple[str, str]]:
    """Queries that give ``expires`` or ``sig`` twice, around a valid link's own query."""
    expires, sig = (part.split("=", 1)[1] for part in sorted(query.split("&")))
    return [
        (f"expires={expires}&sig=0&sig={sig}", "sig"),  # a wrong one first, the right one last
        (f"sig={sig}&expires={expires}&sig={sig}", "sig"),  # the same value twice
        (f"expires=1&expires={expires}&sig={sig}", "expires"),  # an expired one first
        (f"expires={expires}&sig={sig}&expires={expires}", "expires"),
        (f"expires={expires}&%73ig={sig}&sig={sig}", "sig"),  # the name percent-encoded
        (f"expires={expires}&expires={expires}&sig={sig}&sig={sig}", "expires"),
        ("sig=a&sig=b", "sig"),  # no link at all: refused before the key is even read
    ]


async def test_a_signing_parameter_given_twice_is_a_400_with_or_without_a_key(
    gateway: Gateway,
) -> None:
    plain = await gateway.http.get(f"{gateway.path}?{gateway.query}")
    assert plain.status_code == 200
    for query, param in duplicated(gateway.query):
        for headers in ({}, auth(gateway.key)):
            answer = await gateway.http.get(f"{gateway.path}?{query}", headers=headers)
            assert answer.status_code == 400, (query, answer.text)
            error = answer.json()["error"]
            assert (error["code"], error["type"], error["param"]) == (400, "invalid_request", param)
            head = await gateway.http.head(f"{gateway.path}?{query}", headers=headers)
            assert head.status_code == 400


async def test_a_file_is_served_inert_and_named_after_its_type(gateway: Gateway) -> None:
    for answer in (
        await gateway.http.get(f"{gateway.path}?{gateway.query}"),
        await gateway.http.get(gateway.path, headers=auth(gateway.key)),
    ):
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/png"
        assert {name: answer.headers.get(name) for name in SAFE_HEADERS} == SAFE_HEADERS
        disposition = f'inline; filename="{gateway.file_id}.png"'
        assert answer.headers["content-disposition"] == disposition


async def test_head_answers_as_get_without_the_body(gateway: Gateway) -> None:
    """Same status and headers for every way in and every refusal; nothing after the headers
    on the wire."""
    signed = f"{gateway.path}?{gateway.query}"
    cases: list[tuple[str, dict[str, str]]] = [
        (signed, {}),
        (gateway.path, auth(gateway.key)),
        (gateway.path, {}),  # 401
        (f"{gateway.path}?expires=1&sig=00", {}),  # 403
        ("/api/v1/files/file_absent", auth(gateway.key)),  # 404
        (f"{signed}&sig=00", {}),  # 400
    ]
    statuses = []
    for target, headers in cases:
        get = await gateway.http.get(target, headers=headers)
        head = await gateway.http.head(target, headers=headers)
        statuses.append(head.status_code)
        assert head.status_code == get.status_code, target
        assert without_date(head.headers) == without_date(get.headers), target
        assert int(head.headers["content-length"]) == len(get.content)
        assert await raw_head(gateway.base, target, headers) == b"", target
    assert statuses == [200, 200, 401, 403, 404, 400]


def without_date(headers: httpx.Headers) -> dict[str, str]:
    """The headers two answers to the same request share: all but the date and the request
    id (each request has its own)."""
    return {name: value for name, value in headers.items() if name not in ("date", "x-request-id")}


async def raw_head(base: str, target: str, headers: dict[str, str]) -> bytes:
    """What the server sends after the headers of a HEAD answer (it closes the connection)."""
    url = urlsplit(base)
    assert url.hostname and url.port
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        lines = [f"HEAD {target} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        received = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, separator, rest = received.partition(b"\r\n\r\n")
    assert separator and head.startswith(b"HTTP/1.1 "), received[:200]
    return rest
