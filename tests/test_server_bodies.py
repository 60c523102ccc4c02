"""Request bodies through the real server's httptools protocol (``[server] http``), whatever
pieces they arrive in: the app reads exactly the bytes the client sent.

The protocol hands the app the chunks the parser gave without copying them
(:class:`~tryon_core.server.httptools_guard.BodyPieces`); these tests send bodies in one write,
trickled in pieces, chunked, and pipelined behind one another on one connection, to a real
uvicorn on 127.0.0.1 whose app answers with the SHA-256 and length of what it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tryon_core.config import ServerConfig
from tryon_core.server.fast_paths import http_protocol
from tryon_core.server.httptools_guard import BodyPieces
from tryon_core.testing import serve_app


async def _digest_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers ``<sha256 hex> <length> <messages>`` of the request body it read."""
    if scope["type"] != "http":
        return
    digest, length, messages = hashlib.sha256(), 0, 0
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        assert type(message["body"]) is bytes  # the ASGI spec's type, not a view or buffer
        digest.update(message["body"])
        length += len(message["body"])
        messages += 1
        if not message.get("more_body"):
            break
    answer = f"{digest.hexdigest()} {length} {messages}".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@contextlib.asynccontextmanager
async def _served() -> AsyncIterator[int]:
    """uvicorn on a free port with the protocol ``tryon serve`` picks for ``http = httptools``."""
    protocol = http_protocol(ServerConfig(http="httptools"))
    async with serve_app(_digest_app, http=protocol) as url:
        yield int(url.rsplit(":", 1)[1])


def _request(body: bytes, *, chunked: bool = False) -> bytes:
    if chunked:
        pieces = [body[i : i + 70_000] for i in range(0, len(body), 70_000)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        head = b"Transfer-Encoding: chunked\r\n"
        return b"POST /echo HTTP/1.1\r\nHost: t\r\n" + head + b"\r\n" + framed
    head = b"Content-Length: %d\r\n" % len(body)
    return b"POST /echo HTTP/1.1\r\nHost: t\r\n" + head + b"\r\n" + body


async def _answers(reader: asyncio.StreamReader, count: int) -> list[tuple[str, int, int]]:
    answers = []
    for _ in range(count):
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        digest, size, messages = (await reader.readexactly(length)).decode().split()
        answers.append((digest, int(size), int(messages)))
    return answers


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [0, 1, 65_535, 65_537, 1_600_000])
async def test_a_body_in_one_write_arrives_whole(size: int, chunked: bool) -> None:
    body = os.urandom(size)
    async with _served() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_request(body, chunked=chunked))
        await writer.drain()
        [(digest, length, _)] = await _answers(reader, 1)
        writer.close()
    assert (digest, length) == (_sha(body), size)


async def test_a_body_trickled_in_pieces_arrives_whole_in_several_messages() -> None:
    body = os.urandom(300_000)
    request = _request(body)
    async with _served() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for start in range(0, len(request), 7_001):  # pieces that straddle the head and body
            writer.write(request[start : start + 7_001])
            await writer.drain()
            await asyncio.sleep(0.001)
        [(digest, length, messages)] = await _answers(reader, 1)
        writer.close()
    assert (digest, length) == (_sha(body), len(body))
    assert messages > 1  # the app was handed the body as it came, not once at the end


async def test_pipelined_requests_on_one_connection_keep_their_own_bodies() -> None:
    bodies = [os.urandom(n) for n in (200_000, 0, 5, 90_000, 1_000_000, 3)]
    async with _served() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(_request(b, chunked=i % 2 == 1) for i, b in enumerate(bodies)))
        await writer.drain()
        answers = await _answers(reader, len(bodies))
        writer.close()
    assert [(d, n) for d, n, _ in answers] == [(_sha(b), len(b)) for b in bodies]


@given(st.lists(st.binary(max_size=50), max_size=20))
def test_body_pieces_hold_what_was_added_in_order(pieces: list[bytes]) -> None:
    held = BodyPieces()
    for piece in pieces:
        held += piece
    assert bytes(held) == b"".join(pieces)
    assert len(held) == sum(map(len, pieces))


def test_a_lone_piece_is_handed_over_as_it_is() -> None:
    piece = os.urandom(100_000)
    held = BodyPieces()
    held += piece
    assert bytes(held) is piece
