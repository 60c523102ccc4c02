"""tryon_core.egress: a client's URL never reaches inside, and a fetch is bounded in every way.

Real servers on 127.0.0.1 stand in for the internet (listed in ``allow_hosts``); a canary
server on 127.0.0.1, never listed, must see no connection at all. Names resolve through fake
resolvers, never DNS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._images import make
from tests.helpers import openssl_cert
from tryon_core.asyncio_network import http_transport
from tryon_core.egress import EgressPolicy, GuardedFetcher, Resolver, system_resolver
from tryon_core.errors import ClientError, InvalidImage, InvalidRequest, PayloadTooLarge

PARAM = "garment_images[1]"
IMAGE = make("RGB", (80, 80), "PNG")
PUBLIC = "93.184.216.34"


# -- fakes ------------------------------------------------------------------------------------


class Canary:
    """A listener on 127.0.0.1 in its own thread that counts every connection it accepts."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self.port = self._socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    server = Canary()
    yield server
    server.close()
    assert server.connections == 0, "the canary was reached"


Handler = Callable[["Exchange"], Awaitable[None]]


class Exchange:
    """One request the fake server received, and the means to answer it."""

    def __init__(
        self, method: str, target: str, headers: dict[str, str], writer: asyncio.StreamWriter
    ):
        self.method = method
        self.target = target
        self.headers = headers
        self.writer = writer
        self.keep_alive = False

    async def send(
        self, status: int, body: bytes = b"", *, keep_alive: bool = False, **headers: str
    ) -> None:
        """Answer; ``keep_alive`` leaves the connection open for another request."""
        self.keep_alive = keep_alive
        lines = [f"HTTP/1.1 {status} X"] + ([] if keep_alive else ["Connection: close"])
        if "content_length" not in headers and "transfer_encoding" not in headers:
            headers["content_length"] = str(len(body))
        lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items() if v]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()


class Origin:
    """A minimal HTTP/1.1 server on 127.0.0.1: path -> handler. Records what it was asked."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.seen: list[Exchange] = []
        self.connections = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    @staticmethod
    async def _next(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Exchange:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return Exchange(method, target, headers, writer)

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                exchange = await self._next(reader, writer)
                self.seen.append(exchange)
                handler = self.routes.get(exchange.target.split("?")[0])
                if handler is None:
                    await exchange.send(404, b"no such route")
                else:
                    await handler(exchange)
                if not exchange.keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server = Origin()
    await server.start()
    yield server
    await server.stop()


def resolver_for(table: dict[str, list[str]], calls: list[str] | None = None) -> Resolver:
    """A resolver answering from ``table``; unknown names fail as DNS would."""

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[host])

    return resolve


class Recorder(httpx.AsyncBaseTransport):
    """Records every request; passes loopback ones to a real transport, answers others itself."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._real: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if ipaddress.ip_address(request.url.host).is_loopback:
            self._real = self._real or httpx.AsyncHTTPTransport(retries=0)
            return await self._real.handle_async_request(request)
        return httpx.Response(200, content=IMAGE)

    async def aclose(self) -> None:
        if self._real is not None:
            await self._real.aclose()


def mock(
    status: int = 200, content: bytes = IMAGE, headers: dict[str, str] | None = None
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=content, headers=headers)

    return httpx.MockTransport(handler), seen


NAMES = {
    "localhost": ["127.0.0.1"],
    "localhost6": ["::1"],
    "metadata.internal": ["169.254.169.254"],
    "intranet.example": ["10.20.30.40"],
    "mixed.example": [PUBLIC, "127.0.0.1"],
    "mixed6.example": [PUBLIC, "fd00::1"],
    "images.example": [PUBLIC],
    "images.test": ["127.0.0.1"],
}


# -- the table: nothing here may be fetched ---------------------------------------------------

FORBIDDEN = [
    "http://127.0.0.1:{canary}/",
    "http://127.0.0.1:{canary}/a.png?x=1#frag",
    "http://127.0.0.2:{canary}/",
    "http://127.255.255.254:{canary}/",
    "http://localhost:{canary}/",
    "http://LOCALHOST:{canary}/",
    "http://localhost.:{canary}/",
    "http://localhost6:{canary}/",
    "http://0.0.0.0:{canary}/",
    "http://[::1]:{canary}/",
    "http://[::]:{canary}/",
    "http://[::ffff:127.0.0.1]:{canary}/",
    "http://[::ffff:7f00:1]:{canary}/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::127.0.0.1]:{canary}/",
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.0.1/",
    "http://192.168.255.255/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://[febf::1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.internal/computeMetadata/v1/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://[2002:a00:1::]/",  # 6to4 around 10.0.0.1
    "http://[64:ff9b::7f00:1]/",  # NAT64 around 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo
    "http://[fec0::1]/",  # site-local
    "http://2130706433:{canary}/",
    "http://0x7f000001:{canary}/",
    "http://0x7f.1:{canary}/",
    "http://0x7F.0x0.0x0.0x1:{canary}/",
    "http://017700000001:{canary}/",
    "http://0177.1:{canary}/",
    "http://127.1:{canary}/",
    "http://127.0.1:{canary}/",
    "http://0:{canary}/",
    "http://0x0:{canary}/",
    "http://167772161/",  # 10.0.0.1
    "http://0xa9fea9fe/",  # 169.254.169.254
    "http://intranet.example/",
    "http://mixed.example:{canary}/",  # one bad answer among good ones is enough
    "http://mixed6.example/",
]

INVALID = [
    "file:///etc/passwd",
    "file://127.0.0.1/etc/passwd",
    "ftp://127.0.0.1:{canary}/a.png",
    "gopher://127.0.0.1:{canary}/_GET%20/",
    "data:image/png;base64,iVBORw0KGgo=",
    "javascript:alert(1)",
    "dict://127.0.0.1:{canary}/",
    "127.0.0.1:{canary}/a.png",
    "//127.0.0.1:{canary}/a.png",
    "/a.png",
    "",
    "http://",
    "http:///a.png",
    "http://good.example@127.0.0.1:{canary}/",
    "http://127.0.0.1:{canary}@good.example/",
    "http://user:pass@images.example/",
    "http://127.0.0.1\\@images.example/",
    "http://images.example\\@127.0.0.1:{canary}/",
    "http://[fe80::1%25eth0]/",
    "http://127.0.0.1:0/",
    "http://127.0.0.1:65536/",
    "http://1.2.3.4.5/",
    "http://256.0.0.1/",
    "http://0x100000000/",
    "http://08.0.0.1/",
    "http://exa%6Dple.com/",
    "http://a..b/",
    "http://images.example/\r\nX-Injected: 1",
    "http://images.example:{canary}:{canary}/",
]


@pytest.mark.parametrize(
    ("template", "kind"),
    [*((u, "forbidden_url") for u in FORBIDDEN), *((u, "invalid_url") for u in INVALID)],
)
async def test_guard_table(template: str, kind: str, canary: Canary, origin: Origin) -> None:
    url = template.format(canary=canary.port)
    recorder = Recorder()
    policy = EgressPolicy(allow_hosts=frozenset({f"127.0.0.1:{origin.port}"}), timeout=2)
    async with GuardedFetcher(policy, resolver=resolver_for(NAMES), transport=recorder) as fetcher:
        with pytest.raises(InvalidRequest) as caught:
            await fetcher.fetch(url, param=PARAM)
    assert caught.value.type == kind
    assert caught.value.status == 400
    assert caught.value.param == PARAM
    assert PARAM in caught.value.message
    assert recorder.requests == []
    assert origin.connections == 0
    assert canary.connections == 0


async def test_table_would_catch_a_leak() -> None:
    """The instruments work: an unguarded request to a counting server is counted."""
    control = Canary()
    try:
        recorder = Recorder()
        policy = EgressPolicy(allow_hosts=frozenset({f"127.0.0.1:{control.port}"}), timeout=2)
        async with GuardedFetcher(policy, transport=recorder) as fetcher:
            with pytest.raises(InvalidImage):  # the control server hangs up at once
                await fetcher.fetch(f"http://127.0.0.1:{control.port}/", param=PARAM)
        await asyncio.sleep(0.1)
        assert control.connections == 1
        assert len(recorder.requests) == 1
    finally:
        control.close()


# -- redirects --------------------------------------------------------------------------------


def redirect(location: str, status: int = 302) -> Handler:
    async def handler(exchange: Exchange) -> None:
        await exchange.send(status, location=location)

    return handler


def image(body: bytes = IMAGE) -> Handler:
    async def handler(exchange: Exchange) -> None:
        await exchange.send(200, body, content_type="image/png")

    return handler


def guarded(origin: Origin, **policy: object) -> GuardedFetcher:
    allow = frozenset({f"127.0.0.1:{origin.port}", f"images.test:{origin.port}"})
    options: dict[str, object] = {"allow_hosts": allow, "timeout": 3.0, **policy}
    return GuardedFetcher(EgressPolicy(**options), resolver=resolver_for(NAMES))  # type: ignore[arg-type]


async def test_fetches_from_an_allowed_host(origin: Origin) -> None:
    origin.routes["/a.png"] = image()
    async with guarded(origin) as fetcher:
        assert await fetcher.fetch(origin.url("/a.png?size=1"), param=PARAM) == IMAGE
    [exchange] = origin.seen
    assert exchange.target == "/a.png?size=1"
    assert exchange.headers["host"] == f"127.0.0.1:{origin.port}"
    assert exchange.headers["accept-encoding"] == "identity"
    assert "authorization" not in exchange.headers and "cookie" not in exchange.headers


async def test_named_host_keeps_its_host_header(origin: Origin) -> None:
    origin.routes["/a.png"] = image()
    async with guarded(origin) as fetcher:
        assert await fetcher.fetch(origin.url("/a.png", host="images.test"), param=PARAM) == IMAGE
    assert origin.seen[0].headers["host"] == f"images.test:{origin.port}"


async def test_allow_hosts_is_per_port(origin: Origin, canary: Canary) -> None:
    origin.routes["/a.png"] = image()
    async with guarded(origin) as fetcher:
        with pytest.raises(InvalidRequest) as caught:
            await fetcher.fetch(f"http://images.test:{canary.port}/a.png", param=PARAM)
    assert caught.value.type == "forbidden_url"
    assert canary.connections == 0


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_follows_redirects_within_allowed_hosts(origin: Origin, status: int) -> None:
    origin.routes["/start"] = redirect("/a.png", status)
    origin.routes["/a.png"] = image()
    async with guarded(origin) as fetcher:
        assert await fetcher.fetch(origin.url("/start"), param=PARAM) == IMAGE
    assert [e.target for e in origin.seen] == ["/start", "/a.png"]


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("http://127.0.0.1:{canary}/", "forbidden_url"),
        ("http://localhost:{canary}/", "forbidden_url"),
        ("http://2130706433:{canary}/", "forbidden_url"),
        ("http://[::ffff:127.0.0.1]:{canary}/", "forbidden_url"),
        ("http://169.254.169.254/latest/meta-data/", "forbidden_url"),
        ("http://metadata.internal/", "forbidden_url"),
        ("file:///etc/passwd", "invalid_url"),
        ("gopher://127.0.0.1:{canary}/", "invalid_url"),
        ("http://x@127.0.0.1:{canary}/", "invalid_url"),
        ("http://exa%6Dple.com/", "invalid_url"),
    ],
)
async def test_redirect_to_a_forbidden_place_is_refused(
    origin: Origin, canary: Canary, location: str, kind: str
) -> None:
    origin.routes["/start"] = redirect(location.format(canary=canary.port))
    recorder = Recorder()
    allow = frozenset({f"127.0.0.1:{origin.port}"})
    policy = EgressPolicy(allow_hosts=allow, timeout=3)
    async with GuardedFetcher(policy, resolver=resolver_for(NAMES), transport=recorder) as fetcher:
        with pytest.raises(InvalidRequest) as caught:
            await fetcher.fetch(origin.url("/start"), param=PARAM)
    assert (caught.value.type, caught.value.param) == (kind, PARAM)
    assert [str(r.url) for r in recorder.requests] == [origin.url("/start")]
    assert canary.connections == 0


async def test_redirect_loop(origin: Origin) -> None:
    origin.routes["/a"] = redirect("/b")
    origin.routes["/b"] = redirect(origin.url("/a"))
    async with guarded(origin, max_redirects=10) as fetcher:
        with pytest.raises(InvalidImage) as caught:
            await fetcher.fetch(origin.url("/a"), param=PARAM)
    assert caught.value.type == "image_download_failed"
    assert "loop" in caught.value.message and PARAM in caught.value.message
    assert len(origin.seen) == 2


@pytest.mark.parametrize(("hops", "ok"), [(0, True), (3, True), (4, False)])
async def test_redirect_limit(origin: Origin, hops: int, ok: bool) -> None:
    for n in range(1, 6):
        origin.routes[f"/chain/{n}"] = redirect(f"/chain/{n - 1}")
    origin.routes["/chain/0"] = image()
    async with guarded(origin, max_redirects=3) as fetcher:
        if ok:
            assert await fetcher.fetch(origin.url(f"/chain/{hops}"), param=PARAM) == IMAGE
        else:
            with pytest.raises(InvalidImage) as caught:
                await fetcher.fetch(origin.url(f"/chain/{hops}"), param=PARAM)
            assert caught.value.type == "image_download_failed"
            assert "more than 3" in caught.value.message
    assert len(origin.seen) == min(hops, 3) + 1


async def test_redirect_without_location(origin: Origin) -> None:
    origin.routes["/a"] = redirect("")
    async with guarded(origin) as fetcher:
        with pytest.raises(InvalidImage) as caught:
            await fetcher.fetch(origin.url("/a"), param=PARAM)
    assert caught.value.type == "image_download_failed"


async def test_every_redirect_hop_is_resolved_again(origin: Origin) -> None:
    calls: list[str] = []
    origin.routes["/a"] = redirect(origin.url("/b", host="images.test"))
    origin.routes["/b"] = image()
    allow = frozenset({f"images.test:{origin.port}"})
    policy = EgressPolicy(allow_hosts=allow, timeout=3)
    async with GuardedFetcher(policy, resolver=resolver_for(NAMES, calls)) as fetcher:
        assert await fetcher.fetch(origin.url("/a", host="images.test"), param=PARAM) == IMAGE
    assert calls == ["images.test", "images.test"]


# -- connect to the address that was checked --------------------------------------------------


async def test_dns_rebinding_connects_to_the_checked_address() -> None:
    answers = iter([[PUBLIC], ["127.0.0.1"], ["127.0.0.1"]])
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    transport, seen = mock()
    async with GuardedFetcher(EgressPolicy(), resolver=rebinding, transport=transport) as fetcher:
        assert await fetcher.fetch("http://rebind.example/a.png", param=PARAM) == IMAGE
    assert calls == ["rebind.example"]
    [request] = seen
    assert request.url.host == PUBLIC
    assert request.url.path == "/a.png"
    assert request.headers["host"] == "rebind.example"


async def test_https_keeps_the_name_for_tls() -> None:
    transport, seen = mock()
    fetcher = GuardedFetcher(EgressPolicy(), resolver=resolver_for(NAMES), transport=transport)
    async with fetcher:
        await fetcher.fetch("https://images.example:8443/a.png", param=PARAM)
    [request] = seen
    assert str(request.url) == f"https://{PUBLIC}:8443/a.png"
    assert request.extensions["sni_hostname"] == "images.example"
    assert request.headers["host"] == "images.example:8443"


async def test_ipv6_literal_goes_to_that_address() -> None:
    transport, seen = mock()
    async with GuardedFetcher(EgressPolicy(), transport=transport) as fetcher:
        await fetcher.fetch("https://[2606:4700::1111]/a.png", param=PARAM)
    [request] = seen
    assert request.url.host == "2606:4700::1111"
    assert "sni_hostname" not in request.extensions


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://0x5db8d822/", PUBLIC),
        ("http://93.184.55330/", PUBLIC),
        ("http://1572395042/", PUBLIC),
    ],
)
async def test_legacy_ipv4_spellings_mean_their_address(url: str, address: str) -> None:
    transport, seen = mock()
    async with GuardedFetcher(EgressPolicy(), transport=transport) as fetcher:
        await fetcher.fetch(url, param=PARAM)
    assert seen[0].url.host == address


@pytest.fixture
async def tls_origin(tmp_path: Path) -> AsyncIterator[tuple[Origin, ssl.SSLContext]]:
    cert, key = openssl_cert(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = Origin()
    server.routes["/a.png"] = image()
    await server.start(ssl_context=server_context)
    yield server, ssl.create_default_context(cafile=str(cert))
    await server.stop()


async def test_tls_verifies_the_original_name(tls_origin: tuple[Origin, ssl.SSLContext]) -> None:
    server, client_context = tls_origin
    allow = frozenset({f"images.test:{server.port}", f"127.0.0.1:{server.port}"})
    policy = EgressPolicy(allow_hosts=allow, timeout=3)
    transport = http_transport(verify=client_context)  # the default transport, trusting ours
    async with GuardedFetcher(policy, resolver=resolver_for(NAMES), transport=transport) as fetcher:
        url = server.url("/a.png", host="images.test", scheme="https")
        assert await fetcher.fetch(url, param=PARAM) == IMAGE
        # the certificate names images.test only: the bare address must fail verification
        with pytest.raises(InvalidImage) as caught:
            await fetcher.fetch(server.url("/a.png", scheme="https"), param=PARAM)
    assert caught.value.type == "image_download_failed"
    assert server.seen[0].headers["host"] == f"images.test:{server.port}"


async def test_default_transport_does_not_reuse_connections(origin: Origin) -> None:
    async def keep_alive(exchange: Exchange) -> None:
        await exchange.send(200, IMAGE, keep_alive=True)

    origin.routes["/a.png"] = keep_alive
    async with guarded(origin) as fetcher:
        for _ in range(2):
            assert await fetcher.fetch(origin.url("/a.png"), param=PARAM) == IMAGE
    assert origin.connections == 2


# -- bounded bodies, time and failures --------------------------------------------------------

LIMIT = 1000


@pytest.mark.parametrize("size", [LIMIT - 1, LIMIT])
async def test_body_up_to_the_limit(origin: Origin, size: int) -> None:
    origin.routes["/a"] = image(b"x" * size)
    async with guarded(origin, max_bytes=LIMIT) as fetcher:
        assert len(await fetcher.fetch(origin.url("/a"), param=PARAM)) == size


async def test_declared_oversize_is_refused_unread(origin: Origin) -> None:
    async def announce(exchange: Exchange) -> None:
        await exchange.send(200, content_length=str(LIMIT + 1))
        await asyncio.sleep(30)  # the body never comes: reading it would time out instead

    origin.routes["/a"] = announce
    async with guarded(origin, max_bytes=LIMIT, timeout=5.0) as fetcher:
        started = time.monotonic()
        with pytest.raises(PayloadTooLarge) as caught:
            await fetcher.fetch(origin.url("/a"), param=PARAM)
    assert time.monotonic() - started < 2
    assert (caught.value.type, caught.value.param, caught.value.status) == (
        "image_too_large",
        PARAM,
        413,
    )


@pytest.mark.parametrize("framing", ["chunked", "close"])
async def test_undeclared_oversize_stops_early(origin: Origin, framing: str) -> None:
    async def flood(exchange: Exchange) -> None:
        if framing == "chunked":
            await exchange.send(200, transfer_encoding="chunked")
        else:
            await exchange.send(200, content_length="")
        chunk = b"x" * 256
        while True:  # endless: only a client that stops reading ends this before the deadline
            exchange.writer.write(b"100\r\n" + chunk + b"\r\n" if framing == "chunked" else chunk)
            await exchange.writer.drain()

    origin.routes["/a"] = flood
    async with guarded(origin, max_bytes=LIMIT) as fetcher:
        with pytest.raises(PayloadTooLarge) as caught:
            await fetcher.fetch(origin.url("/a"), param=PARAM)
    assert caught.value.type == "image_too_large"


async def test_trickling_body_ends_at_the_deadline(origin: Origin) -> None:
    async def trickle(exchange: Exchange) -> None:
        await exchange.send(200, content_length="100000")
        for _ in range(1000):
            exchange.writer.write(b"x")
            await exchange.writer.drain()
            await asyncio.sleep(0.05)  # well inside any per-read timeout

    origin.routes["/a"] = trickle
    async with guarded(origin, timeout=0.5) as fetcher:
        started = time.monotonic()
        with pytest.raises(InvalidImage) as caught:
            await fetcher.fetch(origin.url("/a"), param=PARAM)
    assert 0.45 < time.monotonic() - started < 1.5
    assert caught.value.type == "image_download_failed"
    assert PARAM in caught.value.message


async def test_silent_server_ends_at_the_deadline(origin: Origin) -> None:
    async def silent(exchange: Exchange) -> None:
        await asyncio.sleep(30)

    origin.routes["/a"] = silent
    async with guarded(origin, timeout=0.5) as fetcher:
        started = time.monotonic()
        with pytest.raises(InvalidImage) as caught:
            await fetcher.fetch(origin.url("/a"), param=PARAM)
    assert time.monotonic() - started < 1.5
    assert caught.value.type == "image_download_failed"


async def test_slow_resolver_ends_at_the_deadline() -> None:
    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(30)
        return [PUBLIC]

    transport, seen = mock()
    policy = EgressPolicy(timeout=0.3)
    async with GuardedFetcher(policy, resolver=slow, transport=transport) as fetcher:
        started = time.monotonic()
        with pytest.raises(InvalidImage) as caught:
            await fetcher.fetch("http://slow.example/", param=PARAM)
    assert time.monotonic() - started < 1.5
    assert caught.value.type == "image_download_failed"
    assert seen == []


@pytest.mark.parametrize(
    ("status", "kind"),
    [(404, "image_not_found"), (410, "image_not_found"), (403, "image_download_failed"),
     (500, "image_download_failed"), (204, "image_download_failed"),
     (304, "image_download_failed")],
)  # fmt: skip
async def test_upstream_status(status: int, kind: str) -> None:
    secret = b"SECRET-BODY internal stack trace"
    transport, _ = mock(status, secret if status != 204 else b"")
    async with GuardedFetcher(
        EgressPolicy(), resolver=resolver_for(NAMES), transport=transport
    ) as fetcher:
        with pytest.raises(InvalidImage) as caught:
            await fetcher.fetch("http://images.example/a.png", param=PARAM)
    assert (caught.value.type, caught.value.status, caught.value.param) == (kind, 400, PARAM)
    assert "SECRET" not in caught.value.message


async def test_compressed_body_is_refused() -> None:
    transport, _ = mock(200, b"\x1f\x8b" + b"\x00" * 20, {"Content-Encoding": "gzip"})
    async with GuardedFetcher(
        EgressPolicy(), resolver=resolver_for(NAMES), transport=transport
    ) as f:
        with pytest.raises(InvalidImage) as caught:
            await f.fetch("http://images.example/a.png", param=PARAM)
    assert caught.value.type == "image_download_failed"


@pytest.mark.parametrize("answer", ["fail", "empty", "garbage"])
async def test_dns_failure(answer: str) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        if answer == "fail":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [] if answer == "empty" else ["not-an-address"]

    transport, seen = mock()
    async with GuardedFetcher(EgressPolicy(), resolver=resolver, transport=transport) as fetcher:
        with pytest.raises(InvalidImage) as caught:
            await fetcher.fetch("http://nowhere.example/a.png", param=PARAM)
    assert (caught.value.type, caught.value.param) == ("image_download_failed", PARAM)
    assert seen == []


async def test_connection_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    policy = EgressPolicy(allow_hosts=frozenset({f"127.0.0.1:{port}"}), timeout=3)
    async with GuardedFetcher(policy) as fetcher:
        with pytest.raises(InvalidImage) as caught:
            await fetcher.fetch(f"http://127.0.0.1:{port}/a.png", param=PARAM)
    assert caught.value.type == "image_download_failed"


# -- policy and properties --------------------------------------------------------------------


def test_policy_normalises_and_checks_allow_hosts() -> None:
    policy = EgressPolicy(allow_hosts=frozenset({" Images.Test:8080 ", "[::1]:9000"}))
    assert policy.allow_hosts == frozenset({"images.test:8080", "[::1]:9000"})
    for bad in ("images.test", "images.test:", "images.test:http", "::1:80", "host:70000"):
        with pytest.raises(ValueError):
            EgressPolicy(allow_hosts=frozenset({bad}))
    with pytest.raises(ValueError):
        EgressPolicy(timeout=0)


async def test_system_resolver_reads_literals_without_dns() -> None:
    assert await system_resolver("127.0.0.1", 80) == ["127.0.0.1"]


FORBIDDEN_NETS = [
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4",
]  # fmt: skip


def spellings(address: ipaddress.IPv4Address) -> st.SearchStrategy[str]:
    """Ways an IPv4 address can be written in a URL host that resolvers accept."""
    n = int(address)
    octets = [int(b) for b in address.packed]
    return st.sampled_from(
        [
            str(address),
            str(n),
            hex(n),
            "0" + oct(n)[2:],
            f"{octets[0]}.{n & 0xFFFFFF}",
            f"{octets[0]}.{octets[1]}.{n & 0xFFFF}",
            ".".join(hex(o) for o in octets),
            ".".join("0" + oct(o)[2:] for o in octets),
            f"[::ffff:{address}]",
        ]
    )


@st.composite
def forbidden_hosts(draw: st.DrawFn) -> str:
    network = ipaddress.IPv4Network(draw(st.sampled_from(FORBIDDEN_NETS)))
    offset = draw(st.integers(0, network.num_addresses - 1))
    return draw(spellings(network.network_address + offset))


@settings(max_examples=200, deadline=None)
@given(host=forbidden_hosts(), port=st.integers(1, 65535), path=st.sampled_from(["/", "/a.png"]))
def test_any_spelling_of_an_inside_address_is_refused(host: str, port: int, path: str) -> None:
    async def run() -> None:
        transport, seen = mock()
        async with GuardedFetcher(EgressPolicy(), transport=transport) as fetcher:
            with pytest.raises(InvalidRequest) as caught:
                await fetcher.fetch(f"http://{host}:{port}{path}", param=PARAM)
        # what we can read is refused for what it means; what httpx cannot parse (``0177.00.00.00``)
        # is refused as malformed; nothing is ever sent
        assert caught.value.type in ("forbidden_url", "invalid_url")
        assert seen == []

    asyncio.run(run())


@settings(max_examples=200, deadline=None)
@given(
    url=st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda scheme, host, rest: f"{scheme}://{host}{rest}",
            st.sampled_from(["http", "https", "HTTP", "ftp", "file", ""]),
            st.text(st.characters(codec="ascii"), max_size=30),
            st.text(max_size=20),
        ),
    )
)
def test_arbitrary_urls_only_reach_public_addresses(url: str) -> None:
    async def public(host: str, port: int) -> list[str]:
        return [PUBLIC]

    async def run() -> None:
        transport, seen = mock()
        async with GuardedFetcher(EgressPolicy(), resolver=public, transport=transport) as fetcher:
            try:
                assert await fetcher.fetch(url, param=PARAM) == IMAGE
            except ClientError as exc:
                assert exc.param == PARAM
        for request in seen:
            assert ipaddress.ip_address(request.url.host).is_global

    asyncio.run(run())
