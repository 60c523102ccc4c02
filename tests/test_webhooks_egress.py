"""GuardedFetcher.post: the webhook sender's way out goes through the same egress guard."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from tryon_core.egress import EgressPolicy, GuardedFetcher, check_url
from tryon_core.errors import InvalidRequest


class OneShot:
    """A raw HTTP/1.1 listener on 127.0.0.1 in the test loop: records requests, answers a status."""

    def __init__(self, status: int = 204, body: bytes = b"") -> None:
        self.status = status
        self.body = body
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> OneShot:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        self.requests.append(head + await reader.readexactly(length))
        writer.write(
            f"HTTP/1.1 {self.status} X\r\nContent-Length: {len(self.body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + self.body
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


def sender(allow: str = "", timeout: float = 2.0, to: str | None = None) -> GuardedFetcher:
    async def resolve(host: str, port: int) -> list[str]:
        return [to] if to else []

    return GuardedFetcher(
        EgressPolicy(allow_hosts=frozenset({allow} if allow else ()), timeout=timeout),
        resolver=resolve,
    )


async def test_post_goes_to_the_checked_address_with_the_original_host() -> None:
    async with OneShot(status=202, body=b"x" * 50_000) as server:
        allowed = f"hooks.test:{server.port}"
        async with sender(allowed, to="127.0.0.1") as guard:
            status = await guard.post(
                f"http://hooks.test:{server.port}/in?a=1",
                body=b'{"ok":true}',
                headers={"Content-Type": "application/json", "X-Extra": "1"},
                param="webhook_url",
            )
    assert status == 202
    (request,) = server.requests
    assert request.startswith(b"POST /in?a=1 HTTP/1.1\r\n")
    assert f"host: hooks.test:{server.port}".encode() in request.lower()
    assert b"x-extra: 1" in request.lower()
    assert request.endswith(b'\r\n\r\n{"ok":true}')


async def test_post_refuses_a_name_that_resolves_inside_without_connecting() -> None:
    async with OneShot() as server, sender(to="127.0.0.1") as guard:  # nothing allowed
        with pytest.raises(InvalidRequest) as caught:
            await guard.post(
                f"http://rebind.test:{server.port}/",
                body=b"{}",
                headers={},
                param="webhook_url",
            )
    assert caught.value.type == "forbidden_url" and caught.value.param == "webhook_url"
    assert server.requests == []


async def test_post_answers_a_redirect_instead_of_following_it() -> None:
    async with OneShot(status=307) as server, sender(f"127.0.0.1:{server.port}") as guard:
        url = f"http://127.0.0.1:{server.port}/"
        assert await guard.post(url, body=b"{}", headers={}, param="webhook_url") == 307
    assert len(server.requests) == 1


async def test_post_failures_are_connection_and_timeout_errors(closed_port: int) -> None:
    async with sender(f"127.0.0.1:{closed_port}") as guard:
        with pytest.raises(ConnectionError, match="connection to the server failed"):
            await guard.post(
                f"http://127.0.0.1:{closed_port}/", body=b"{}", headers={}, param="webhook_url"
            )
    async with sender() as guard:
        with pytest.raises(ConnectionError, match="could not be resolved"):
            await guard.post("https://nowhere.test/", body=b"{}", headers={}, param="webhook_url")

    release = asyncio.Event()
    handlers: list[asyncio.Task[None] | None] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())
        await release.wait()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with sender(f"127.0.0.1:{port}", timeout=0.2) as guard:
            with pytest.raises(TimeoutError, match=r"no answer within 0\.2 s"):
                await guard.post(f"http://127.0.0.1:{port}/", body=b"{}", headers={}, param="p")
    finally:
        release.set()
        await asyncio.gather(*(t for t in handlers if t), return_exceptions=True)
        server.close()
        await server.wait_closed()


def test_check_url_normalizes_and_checks_literals_only() -> None:
    assert check_url("HTTP://Example.COM:80/a#frag", param="u") == "http://example.com/a"
    assert check_url("http://127.0.0.1:8080/", param="u", allow_hosts=["127.0.0.1:8080"])
    with pytest.raises(InvalidRequest, match="private, local or reserved"):
        check_url("http://0x7f.1/", param="u")
