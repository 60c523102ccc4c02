"""tryon_core.asyncio_network: the gateway's HTTP clients move their bytes on asyncio's own
transports. Driven through httpx against real servers on 127.0.0.1 that write and read raw
bytes: what arrives is exact however it is cut, reading and writing wait for the other side,
a stale kept-alive connection is not reused, and failures are httpx's usual errors."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import openssl_cert
from tryon_core.asyncio_network import READ_HIGH_WATER, AsyncioBackend, http_transport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def on_each_loop(scenario: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """``scenario`` as a test run twice: on asyncio's own loop and on uvloop's (the loop
    ``tryon serve`` runs when uvloop is installed; its transports are its own code)."""

    @pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
    @functools.wraps(scenario)
    def test(loop: str, **fixtures: Any) -> None:
        run = asyncio.run if loop == "asyncio" else pytest.importorskip("uvloop").run
        run(scenario(**fixtures))

    signature = inspect.signature(scenario)
    loop = inspect.Parameter("loop", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    test.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[loop, *signature.parameters.values()]
    )
    return test


class Server:
    """A raw TCP (or TLS) server: each connection goes to ``handler``; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the test ended: this connection's task ends
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._server.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (Content-Length only)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


def response_head(length: int, *extra: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", f"Content-Length: {length}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def client(**options: Any) -> httpx.AsyncClient:
    timeout = options.pop("timeout", 10.0)
    return httpx.AsyncClient(transport=http_transport(**options), timeout=timeout)


def test_the_transport_uses_the_backend(make_app: Any) -> None:
    pool = http_transport()._pool
    assert isinstance(pool._network_backend, AsyncioBackend)
    proxied = http_transport(proxy="http://127.0.0.1:3128")._pool  # a proxy's pool: left as is
    assert not isinstance(proxied._network_backend, AsyncioBackend)
    gateway = make_app().state.gateway
    for transport in (gateway.http._transport, gateway.fetcher._client._transport):
        assert isinstance(transport._pool._network_backend, AsyncioBackend)


@on_each_loop
async def test_requests_keep_their_connection_and_their_bytes() -> None:
    seen: list[bytes] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, body = await read_request(reader)
            seen.append(body)
            writer.write(response_head(len(body)) + body[::-1])
            await writer.drain()

    async with Server(echo).running() as server, client() as http:
        for n in range(3):
            body = bytes(range(256)) * (n + 1)
            answer = await http.post(f"http://127.0.0.1:{server.port}/", content=body)
            assert answer.content == body[::-1]
            sock = answer.extensions["network_stream"].get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert seen == [bytes(range(256)) * (n + 1) for n in range(3)]
    assert server.connections == 1


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(0, 2_000_000),
    cuts=st.lists(st.integers(1, 400_000), min_size=1, max_size=12),
    chunked=st.booleans(),
    upload=st.integers(0, 2_000_000),
)
def test_bytes_arrive_whole_however_they_are_cut(
    loop: str, size: int, cuts: list[int], chunked: bool, upload: int
) -> None:
    body = (bytes(range(251)) * (size // 251 + 1))[:size]
    sent = b"\x07" * upload
    received: list[bytes] = []

    async def cut_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, request_body = await read_request(reader)
        received.append(request_body)
        if chunked:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        else:
            writer.write(response_head(len(body)))
        position, turn = 0, 0
        while position < len(body):
            piece = body[position : position + cuts[turn % len(cuts)]]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            position, turn = position + len(piece), turn + 1
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(b"0\r\n\r\n" if chunked else b"")
        await writer.drain()

    async def run() -> bytes:
        async with Server(cut_up).running() as server, client() as http:
            answer = await http.post(f"http://127.0.0.1:{server.port}/", content=sent)
            return answer.content

    runner = asyncio.run if loop == "asyncio" else pytest.importorskip("uvloop").run
    assert runner(run()) == body
    assert received == [sent]


@on_each_loop
async def test_an_unread_answer_stops_being_read_past_the_high_water() -> None:
    total = 64 * 1024 * 1024
    written = [0]

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(total))
        block = b"z" * 65536
        while written[0] < total:
            writer.write(block)
            await writer.drain()  # waits while the client reads nothing
            written[0] += len(block)

    async with Server(flood).running() as server, client() as http:
        url = f"http://127.0.0.1:{server.port}/"
        async with http.stream("GET", url) as answer:
            chunks = answer.aiter_raw()
            got = len(await anext(chunks))
            await asyncio.sleep(0.5)
            # our buffer (1 MiB), the kernel's socket buffers and the server's transport: far
            # from the 64 MiB the server has to send
            assert written[0] < 32 * 1024 * 1024 - READ_HIGH_WATER
            async for chunk in chunks:
                got += len(chunk)
    assert got == total


@on_each_loop
async def test_a_big_upload_waits_for_a_slow_reader_and_arrives_whole() -> None:
    body = struct.pack(">I", 12345) * (8 * 1024 * 1024 // 4)  # 32 MiB
    received: list[bytes] = []

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        parts = []
        while length:
            part = await reader.read(min(length, 1 << 20))
            parts.append(part)
            length -= len(part)
            await asyncio.sleep(0.001)
        received.append(b"".join(parts))
        writer.write(response_head(2) + b"ok")
        await writer.drain()

    async with Server(slow).running() as server, client() as http:
        answer = await http.post(f"http://127.0.0.1:{server.port}/", content=body)
    assert answer.text == "ok"
    assert received == [body]


@on_each_loop
async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(2) + b"hi")  # keep-alive by HTTP/1.1's default
        await writer.drain()
        # then the server closes it, as servers do with idle connections

    async with Server(once).running() as server, client() as http:
        url = f"http://127.0.0.1:{server.port}/"
        assert (await http.get(url)).text == "hi"
        await asyncio.sleep(0.2)  # the close arrives while the connection rests in the pool
        assert (await http.get(url)).text == "hi"
    assert server.connections == 2


@on_each_loop
async def test_failures_are_httpx_errors() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(1000) + b"x" * 10)
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # a reset, mid-body

    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async with Server(silent).running() as server, client(timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"http://127.0.0.1:{server.port}/")
    async with Server(reset).running() as server, client() as http:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await http.get(f"http://127.0.0.1:{server.port}/")
    async with Server(never_reads).running() as server, client(timeout=0.5) as http:
        with pytest.raises(httpx.WriteTimeout):
            await http.post(f"http://127.0.0.1:{server.port}/", content=b"x" * (64 << 20))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: refused
        async with client() as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{port}/")


@on_each_loop
async def test_a_cancelled_request_leaves_the_client_usable() -> None:
    async def slow_then_fine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            if b"/slow" in head:
                await asyncio.sleep(30)
            writer.write(response_head(2) + b"ok")
            await writer.drain()

    async with Server(slow_then_fine).running() as server, client() as http:
        url = f"http://127.0.0.1:{server.port}"
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await http.get(f"{url}/slow")
        for _ in range(3):
            assert (await http.get(f"{url}/fast")).text == "ok"
    assert server.connections == 2  # the cancelled one was dropped, not reused


@on_each_loop
async def test_tls_is_verified_by_name(tmp_path: Path) -> None:
    cert, key = openssl_cert(tmp_path)  # for images.test
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(response_head(5) + b"hello")
            await writer.drain()

    async with Server(hello).running(tls=server_context) as server:
        async with client(verify=trusting) as http:
            url = f"https://127.0.0.1:{server.port}/"
            named = {"sni_hostname": "images.test"}
            for _ in range(2):
                answer = await http.get(url, extensions=named)
                assert answer.text == "hello"
                stream = answer.extensions["network_stream"]
                assert stream.get_extra_info("ssl_object").server_hostname == "images.test"
        async with client(verify=trusting) as http:
            with pytest.raises(httpx.ConnectError, match="certificate"):
                await http.get(url)  # the certificate does not name 127.0.0.1
        async with client() as http:  # the system's roots do not know ours
            with pytest.raises(httpx.ConnectError):
                await http.get(url, extensions=named)
    assert server.connections == 1  # a handshake refused never reached the server
