"""Hostile request bodies: too big, endless, too many parts, too deep, the wrong type.

Each gets a clear 4xx envelope, never a 500, and a refused body is not read to its end: the
streaming tests count the chunks a client managed to hand over before the gateway hung up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import auth, live_server, new_key
from tryon_core.api import create_app
from tryon_core.api.routes.tryon import form_part_limit
from tryon_core.api.unread import LINGER_BYTES
from tryon_core.config import Settings
from tryon_core.testing import ScriptedProvider

Client = AsyncTestClient[Litestar]
ROUTES = ["/api/v1/tryon", "/api/v1/chat/completions"]
LIMIT = 64 * 1024  # [server] max_body_bytes in the streaming tests
CHUNK = 64 * 1024
ENDLESS = 4096  # chunks: 256 MiB, far more than a socket buffers
READ_BOUND = 16 * 1024 * 1024  # what the client may hand over: limit + linger + socket buffers


def app_with(
    make_settings: Callable[..., Settings],
    scripted: ScriptedProvider,
    *,
    database_url: str | None = None,
    max_body_bytes: int | None = None,
    extra: str = "",
) -> Litestar:
    settings = make_settings(database_url, extra)
    if max_body_bytes is not None:
        server = msgspec.structs.replace(settings.server, max_body_bytes=max_body_bytes)
        settings = msgspec.structs.replace(settings, server=server)
    return create_app(settings, extra_plugins=[scripted], load_entry_points=False)


class Body:
    """A streamed request body of ``chunks`` chunks that counts how many were taken."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.taken = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.taken += 1
            yield b"x" * CHUNK

    @property
    def bytes_taken(self) -> int:
        return self.taken * CHUNK


def expect_envelope(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert (error["code"], error["type"]) == (status, kind)
    assert error["message"]
    return error


# -- bodies over [server] max_body_bytes ------------------------------------------------------


@pytest.fixture
async def small_limit(
    make_settings: Callable[..., Settings], scripted: ScriptedProvider
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    app = app_with(make_settings, scripted, max_body_bytes=LIMIT)
    async with live_server(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        key, _ = await new_key(app)
        yield http, key


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
async def test_a_body_just_over_the_limit_gets_413(
    small_limit: tuple[httpx.AsyncClient, str], route: str, declared: bool
) -> None:
    http, key = small_limit
    body = Body(3)  # 192 KiB: over the limit, within what the gateway drains before hanging up
    headers = {**auth(key), "Content-Type": "application/json"}
    if declared:
        headers["Content-Length"] = str(body.chunks * CHUNK)
    response = await http.post(route, content=body, headers=headers)
    expect_envelope(response, 413, "payload_too_large")
    assert response.headers["connection"] == "close"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
@pytest.mark.parametrize("authorized", [True, False], ids=["key", "no-key"])
async def test_an_endless_body_is_not_read_to_its_end(
    small_limit: tuple[httpx.AsyncClient, str], route: str, declared: bool, authorized: bool
) -> None:
    """256 MiB offered; the gateway takes the limit, lingers a little, then hangs up.

    httpx reads the answer only once it has sent the whole body or the connection broke, so
    here it sees the connection close; curl and browsers read the 413 (or 401) meanwhile.
    """
    http, key = small_limit
    body = Body(ENDLESS)
    headers = {"Content-Type": "application/json", **(auth(key) if authorized else {})}
    if declared:
        headers["Content-Length"] = str(ENDLESS * CHUNK)
    started = time.monotonic()
    try:
        response = await http.post(route, content=body, headers=headers)
    except httpx.TransportError:
        pass  # the gateway hung up while the client was still sending: the point of the test
    else:
        assert response.status_code == (413 if authorized else 401), response.text
    assert body.bytes_taken <= READ_BOUND, f"{body.bytes_taken} bytes were taken"
    assert body.taken < ENDLESS
    assert time.monotonic() - started < 8
    assert (await http.get("/healthz")).status_code == 200  # and it serves the next client


def test_read_bound_leaves_room_for_the_linger() -> None:
    assert LIMIT + LINGER_BYTES < READ_BOUND


# -- multipart --------------------------------------------------------------------------------


@pytest.fixture
async def form_client(
    make_settings: Callable[..., Settings], scripted: ScriptedProvider, database_url: str
) -> AsyncIterator[Client]:
    app = app_with(
        make_settings, scripted, database_url=database_url, extra="[images]\nmax_bytes = 100000\n"
    )
    async with AsyncTestClient(app=app) as client:
        yield client


async def test_too_many_parts_is_413(form_client: Client) -> None:
    key, _ = await new_key(form_client)
    limit = form_part_limit(4)
    files = [("models", (None, "scripted/alpha"))] * (limit + 1)
    response = await form_client.post("/api/v1/tryon", files=files, headers=auth(key))
    error = expect_envelope(response, 413, "payload_too_large")
    assert f"at most {limit} parts" in error["message"]


async def test_a_part_with_too_many_headers_is_413(form_client: Client) -> None:
    key, _ = await new_key(form_client)
    noisy = {f"X-Noise-{n}": "1" for n in range(12)}
    files = [("person_images", ("p.png", b"x", "image/png", noisy))]
    response = await form_client.post("/api/v1/tryon", files=files, headers=auth(key))
    expect_envelope(response, 413, "payload_too_large")


async def test_the_part_limit_leaves_room_for_every_field(
    form_client: Client, person_url: str, garment_url: str
) -> None:
    """A form with every field, four garments and ten models is not refused for its size."""
    key, _ = await new_key(form_client)
    fields: list[tuple[str, Any]] = [("person_images", (None, person_url))]
    fields += [("garment_images", (None, garment_url))] * 4
    fields += [("models", (None, "scripted/alpha"))] * 10
    fields += [
        (name, (None, value))
        for name, value in {"model": "auto", "category": "tops", "prompt": "p", "n": "1",
                            "seed": "1", "output_format": "png", "mode": "sync"}.items()
    ]  # fmt: skip
    response = await form_client.post("/api/v1/tryon", files=fields, headers=auth(key))
    assert response.status_code != 413, response.text
    assert response.status_code < 500, response.text


async def test_an_oversized_file_part_is_refused_for_its_image(form_client: Client) -> None:
    key, _ = await new_key(form_client)
    files = [
        ("person_images", ("p.jpg", b"\xff\xd8\xff" + b"\x00" * 100_000, "image/jpeg")),
        ("garment_images", ("g.png", b"\x89PNG\r\n\x1a\n", "image/png")),
    ]
    response = await form_client.post("/api/v1/tryon", files=files, headers=auth(key))
    error = expect_envelope(response, 413, "image_too_large")
    assert error["param"] == "person_images[0]"
    assert (await form_client.get("/api/v1/credits", headers=auth(key))).json()["balance"] == 100


async def test_an_oversized_text_part_is_a_clear_400(form_client: Client) -> None:
    key, _ = await new_key(form_client)
    files = [
        ("person_images", (None, "https://images.example/" + "a" * 1_000_000)),
        ("garment_images", (None, "https://images.example/g.png")),
        ("prompt", (None, "p" * 1_000_000)),
    ]
    response = await form_client.post("/api/v1/tryon", files=files, headers=auth(key))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] in ("prompt", "person_images[0]")


@pytest.mark.parametrize(
    "body",
    [
        b'--xyz\r\nContent-Disposition: form-data; name="n"\r\n\r\n1',  # never ends
        b"garbage",
        b"--xyz\r\nno headers at all\r\n--xyz--\r\n",
        b"--xyz--\r\n",
    ],
)
async def test_broken_multipart_is_400(form_client: Client, body: bytes) -> None:
    key, _ = await new_key(form_client)
    response = await form_client.post(
        "/api/v1/tryon",
        content=body,
        headers={**auth(key), "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == 400


# -- JSON: deep, huge, malformed --------------------------------------------------------------

DEPTH = 100_000
MESSAGE = {"role": "user", "content": "hi"}


def deep_bodies() -> list[tuple[str, bytes]]:
    arrays = b"[" * DEPTH + b"]" * DEPTH
    objects = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
    prefix = b'{"messages":[{"role":"user","content":"hi"}],'
    return [
        ("top-level arrays", arrays),
        ("top-level objects", objects),
        ("unclosed", b"[" * DEPTH),
        ("unknown field", b'{"temperature":' + arrays + b"}"),
        ("ignored field", prefix + b'"temperature":' + arrays + b"}"),
        ("ignored objects", prefix + b'"metadata":' + objects + b"}"),
        ("known field", b'{"person_images":' + arrays + b"}"),
        ("message part", b'{"messages":[{"role":"user","content":[{"type":"text","x":'
         + arrays + b"}]}]}"),
    ]  # fmt: skip


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("name", "body"), deep_bodies(), ids=[n for n, _ in deep_bodies()])
async def test_deeply_nested_json_is_400(
    client: Client, scripted: ScriptedProvider, route: str, name: str, body: bytes
) -> None:
    key, _ = await new_key(client, credits=10)
    async with asyncio.timeout(20):
        response = await client.post(
            route, content=body, headers={**auth(key), "Content-Type": "application/json"}
        )
    expect_envelope(response, 400, "invalid_request")
    assert scripted.calls == []


def huge_bodies(person_url: str) -> list[tuple[str, str, Any]]:
    many = [person_url] * 2000
    return [
        ("/api/v1/tryon", "many people", {"person_images": many, "garment_images": [person_url]}),
        ("/api/v1/tryon", "many garments", {"person_images": person_url, "garment_images": many}),
        ("/api/v1/tryon", "long prompt", {"person_images": person_url, "garment_images":
                                          person_url, "prompt": "p" * 5_000_000}),
        ("/api/v1/tryon", "many models", {"person_images": person_url, "garment_images":
                                          person_url, "models": ["a/b"] * 100_000}),
        ("/api/v1/chat/completions", "many messages", {"messages": [MESSAGE] * 200_000}),
        ("/api/v1/chat/completions", "many parts", {"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": person_url}}] * 2000}]}),
        ("/api/v1/chat/completions", "many models", {"messages": [MESSAGE],
                                                     "models": ["a/b"] * 100_000}),
    ]  # fmt: skip


async def test_huge_json_within_the_body_limit_is_a_clear_4xx(
    client: Client, scripted: ScriptedProvider, person_url: str
) -> None:
    key, _ = await new_key(client, credits=10)
    for route, name, body in huge_bodies(person_url):
        async with asyncio.timeout(20):
            response = await client.post(route, json=body, headers=auth(key))
        assert 400 <= response.status_code < 500, (name, response.text[:300])
        assert response.json()["error"]["code"] == response.status_code, name
    assert scripted.calls == []
    credits = (await client.get("/api/v1/credits", headers=auth(key))).json()
    assert (credits["balance"], credits["reserved"]) == (10, 0)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "body",
    [b"", b"{not json", b"\xff\xfe\x00{", b"null", b"[]", b'"text"', b"1e999999", b"{}" * 1000],
)
async def test_malformed_json_is_400(client: Client, route: str, body: bytes) -> None:
    key, _ = await new_key(client)
    response = await client.post(
        route, content=body, headers={**auth(key), "Content-Type": "application/json"}
    )
    expect_envelope(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (None, 415),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/xml", 415),
        ("image/png", 415),
        ("multipart/form-data", 400),  # no boundary
        ("multipart/form-data; boundary=xyz", 400),  # a JSON body is no form
        ("multipart/mixed; boundary=xyz", 415),
        ("application/json; charset=utf-8", 400),  # a form body is no JSON
    ],
)
async def test_wrong_or_missing_content_type_on_tryon(
    client: Client, content_type: str | None, status: int
) -> None:
    key, _ = await new_key(client)
    body = b'{"person_images": "x"}' if "multipart" in (content_type or "") else b"a=1&b=2"
    headers = {**auth(key), **({"Content-Type": content_type} if content_type else {})}
    response = await client.post("/api/v1/tryon", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == status


@pytest.mark.parametrize("content_type", [None, "text/plain", "multipart/form-data; boundary=x"])
async def test_chat_refuses_a_body_that_is_not_json_whatever_its_type(
    client: Client, content_type: str | None
) -> None:
    key, _ = await new_key(client)
    headers = {**auth(key), **({"Content-Type": content_type} if content_type else {})}
    response = await client.post(
        "/api/v1/chat/completions", content=b"--x\r\n\r\nhello", headers=headers
    )
    expect_envelope(response, 400, "invalid_request")
