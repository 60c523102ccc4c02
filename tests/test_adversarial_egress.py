"""The egress guard through the real HTTP API: image URLs and webhook URLs a client gives.

Every hostile URL is refused with a 4xx envelope naming the field, costs nothing, and a canary
listening on 127.0.0.1 hears from none of them. Slow and huge upstreams (a threaded server on
127.0.0.1, allowed by ``[fetch] allow_hosts``) end within ``[fetch] timeout`` and are cut off
after ``max_bytes``: the server counts what it managed to send before the gateway hung up.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import SAMPLES, auth, new_key
from tests.test_egress import IMAGE, PUBLIC, Canary, Recorder
from tryon_core import egress
from tryon_core.egress import EgressPolicy, GuardedFetcher

Client = AsyncTestClient[Litestar]
TIMEOUT = 1.0  # [fetch] timeout
MAX_BYTES = 1_000_000  # [fetch] max_bytes
# What a flooding upstream (its send buffer held at 64 KiB) gets out before the gateway hangs
# up: the limit plus what the gateway's socket buffers. Measured: 0.2 MB when the declared
# Content-Length is refused unread, 1.1-1.6 MB without one, for a 1 MB limit.
SENT_BOUND = MAX_BYTES + 4 * 1024 * 1024
CREDITS = 10

NAMES = {
    "localhost6": ["::1"],
    "metadata.internal": ["169.254.169.254"],
    "intranet.example": ["10.20.30.40"],
    "mixed.example": [PUBLIC, "127.0.0.1"],
}


async def table_resolver(host: str, port: int) -> list[str]:
    """Stands in for DNS in the gateway: no name here may ever reach the network."""
    if host not in NAMES:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return list(NAMES[host])


# -- a threaded upstream on 127.0.0.1 ---------------------------------------------------------


class Upstream:
    """HTTP/1.0-style server in threads: path -> behaviour; counts the body bytes it sent."""

    def __init__(self, canary_port: int) -> None:
        self.canary_port = canary_port
        self.sent: dict[str, int] = {}
        self.requests: list[str] = []
        self._stop = threading.Event()
        upstream = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(65537).decode("latin-1")
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                path = line.split(" ")[1] if line.count(" ") >= 2 else "/"
                upstream.requests.append(path)
                with contextlib.suppress(OSError):  # the gateway hung up: we counted what it got
                    upstream.answer(path, self.connection)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _head(self, conn: socket.socket, status: int, **headers: str) -> None:
        lines = [f"HTTP/1.1 {status} X", "Connection: close"]
        lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _send(self, conn: socket.socket, path: str, data: bytes) -> None:
        conn.sendall(data)
        self.sent[path] = self.sent.get(path, 0) + len(data)

    def answer(self, path: str, conn: socket.socket) -> None:
        canary = f"http://127.0.0.1:{self.canary_port}/"
        redirects = {
            "/to-canary": canary,
            "/to-canary-spelled": f"http://2130706433:{self.canary_port}/",
            "/to-localhost": f"http://localhost:{self.canary_port}/",
            "/to-v6": f"http://[::ffff:127.0.0.1]:{self.canary_port}/",
            "/to-metadata": "http://169.254.169.254/latest/meta-data/",
            "/to-metadata-name": "http://metadata.internal/",
            "/to-file": "file:///etc/passwd",
            "/to-gopher": f"gopher://127.0.0.1:{self.canary_port}/_x",
            "/to-userinfo": f"http://good@127.0.0.1:{self.canary_port}/",
            "/loop-a": "/loop-b",
            "/loop-b": "/loop-a",
        }
        if path in redirects:
            self._head(conn, 302, Location=redirects[path], Content_Length="0")
        elif path.startswith("/chain/"):
            hops = int(path.rsplit("/", 1)[1])
            target = f"/chain/{hops - 1}" if hops else "/garment.png"
            self._head(conn, 302, Location=target, Content_Length="0")
        elif path in ("/garment.png", "/person.jpg"):
            data = (SAMPLES / path.lstrip("/")).read_bytes()
            self._head(conn, 200, Content_Type="image/png", Content_Length=str(len(data)))
            self._send(conn, path, data)
        elif path == "/trickle":
            self._head(conn, 200, Content_Length="100000")
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self._stop.is_set():
                self._send(conn, path, b"x")
                time.sleep(0.02)  # 50 bytes a second, each well inside any per-read timeout
        elif path.startswith("/flood"):
            framing = path.removeprefix("/flood-")
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)  # count, not buffer
            if framing == "length":
                self._head(conn, 200, Content_Length=str(100 * MAX_BYTES))
            elif framing == "chunked":
                self._head(conn, 200, Transfer_Encoding="chunked")
            else:
                self._head(conn, 200)  # no length: the body ends when the connection does
            chunk = b"x" * 16384
            frame = b"4000\r\n" + chunk + b"\r\n" if framing == "chunked" else chunk
            while not self._stop.is_set():  # endless: only the client hanging up ends it
                self._send(conn, path, frame)
        elif path == "/silent":
            self._stop.wait(30)
        else:
            self._head(conn, 404, Content_Length="0")


@pytest.fixture
def canary() -> Iterator[Canary]:
    server = Canary()
    yield server
    server.close()


@pytest.fixture
def upstream(canary: Canary) -> Iterator[Upstream]:
    server = Upstream(canary.port)
    yield server
    server.close()


@pytest.fixture
async def api(
    make_app: Callable[..., Litestar],
    database_url: str,
    upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Client]:
    """The gateway on each backend; the upstream allowed; names resolved from ``NAMES``."""
    monkeypatch.setattr(egress, "system_resolver", table_resolver)
    extra = f"""
[fetch]
allow_hosts = ["127.0.0.1:{upstream.port}"]
timeout = {TIMEOUT}
max_bytes = {MAX_BYTES}
max_redirects = 3
"""
    async with AsyncTestClient(app=make_app(database_url, extra)) as client:
        yield client


async def balance(client: Client, key: str) -> tuple[int, int]:
    credits = (await client.get("/api/v1/credits", headers=auth(key))).json()
    return credits["balance"], credits["reserved"]


# -- the table --------------------------------------------------------------------------------

FORBIDDEN = [
    "http://127.0.0.1:{canary}/a.png",
    "http://127.0.0.2:{canary}/",
    "http://127.255.255.254:{canary}/",
    "http://localhost:{canary}/",
    "http://LocalHost.:{canary}/",
    "http://images.localhost:{canary}/",
    "http://localhost6:{canary}/",
    "http://0.0.0.0:{canary}/",
    "http://[::1]:{canary}/",
    "http://[::]:{canary}/",
    "http://[::ffff:127.0.0.1]:{canary}/",
    "http://[::ffff:7f00:1]:{canary}/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fd12:3456::1]/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://metadata.internal/computeMetadata/v1/",
    "http://intranet.example/",
    "http://mixed.example:{canary}/",
    "http://2130706433:{canary}/",
    "http://0x7f000001:{canary}/",
    "http://017700000001:{canary}/",
    "http://0x7f.1:{canary}/",
    "http://127.1:{canary}/",
    "http://127.0.1:{canary}/",
    "http://0:{canary}/",
    "http://2852039166/",  # 169.254.169.254
    "http://0xa9.0xfe.0xa9.0xfe/",
    # special-purpose blocks Python 3.11's is_global let through (the IANA table decides now)
    "http://192.0.0.8/",  # IPv4 dummy address (RFC 7600)
    "http://192.88.99.1/",  # deprecated 6to4 relay anycast (RFC 7526)
    "http://[3fff::1]/",  # documentation (RFC 9637)
    "http://[2002:c058:6301::]/",  # 6to4 around 192.88.99.1
    "http://[64:ff9b::c000:8]/",  # NAT64 around 192.0.0.8
]
INVALID = [
    "file:///etc/passwd",
    "file://127.0.0.1/etc/passwd",
    "ftp://127.0.0.1:{canary}/a.png",
    "gopher://127.0.0.1:{canary}/_GET%20/",
    "dict://127.0.0.1:{canary}/",
    "javascript:alert(1)",
    "http://good@127.0.0.1:{canary}/",
    "http://127.0.0.1:{canary}@good.example/",
    "http://user:pass@good.example/",
    "http://good.example\\@127.0.0.1:{canary}/",
    "http://[fe80::1%25eth0]/",
    "//127.0.0.1:{canary}/",
    "http://256.0.0.1/",
    "http://0177.0.0.1:{canary}/",  # 127.0.0.1 to inet_aton; httpx will not parse it
]
REDIRECTS = [
    ("/to-canary", 400, "forbidden_url"),
    ("/to-canary-spelled", 400, "forbidden_url"),
    ("/to-localhost", 400, "forbidden_url"),
    ("/to-v6", 400, "forbidden_url"),
    ("/to-metadata", 400, "forbidden_url"),
    ("/to-metadata-name", 400, "forbidden_url"),
    ("/to-file", 400, "invalid_url"),
    ("/to-gopher", 400, "invalid_url"),
    ("/to-userinfo", 400, "invalid_url"),
    ("/loop-a", 400, "image_download_failed"),
    ("/chain/3", 400, "image_download_failed"),  # four redirects: one over max_redirects
]
# Where a URL is expected, a data: URL is no URL: webhooks get these on top of the table.
NOT_WEBHOOKS = ["data:text/plain;base64,aGk=", "data:,hello"]


def image_table(canary: int, upstream: Upstream) -> list[tuple[str, int, str]]:
    rows = [(u.format(canary=canary), 400, "forbidden_url") for u in FORBIDDEN]
    rows += [(u.format(canary=canary), 400, "invalid_url") for u in INVALID]
    rows += [(upstream.url(path), status, kind) for path, status, kind in REDIRECTS]
    return rows


async def test_hostile_image_urls_are_refused_and_cost_nothing(
    api: Client, canary: Canary, upstream: Upstream, person_url: str
) -> None:
    key, _ = await new_key(api, credits=CREDITS)
    table = image_table(canary.port, upstream)
    wrong: list[str] = []
    for url, status, kind in table:
        body = {"model": "scripted/alpha", "person_images": person_url, "garment_images": [url]}
        async with asyncio.timeout(TIMEOUT + 3):
            response = await api.post("/api/v1/tryon", json=body, headers=auth(key))
        error = response.json().get("error", {})
        got = (response.status_code, error.get("type"), error.get("param"))
        if got != (status, kind, "garment_images[0]"):
            wrong.append(f"{url}: {got} {error.get('message')}")
    assert wrong == []
    assert await balance(api, key) == (CREDITS, 0)
    assert len(table) >= 55
    assert canary.connections == 0, "a hostile URL reached the canary"
    # the allowed upstream was asked only for the redirect starts and their allowed hops
    assert all(not path.startswith("/to-") or path in dict.fromkeys(r[0] for r in REDIRECTS)
               for path in upstream.requests)  # fmt: skip


async def test_hostile_webhook_urls_are_refused_at_submission(
    api: Client, canary: Canary, upstream: Upstream, tryon_body: Any
) -> None:
    key, _ = await new_key(api, credits=CREDITS)
    table = [u.format(canary=canary.port) for u in FORBIDDEN + INVALID] + NOT_WEBHOOKS
    wrong: list[str] = []
    for url in table:  # names too: resolved (here from NAMES) before the 202
        body = tryon_body(model="scripted/alpha", mode="async", webhook_url=url)
        response = await api.post("/api/v1/tryon", json=body, headers=auth(key))
        error = response.json().get("error", {})
        got = (response.status_code, error.get("type"), error.get("param"))
        if got[0] != 400 or got[1] not in ("forbidden_url", "invalid_url", "invalid_request") \
                or got[2] != "webhook_url":  # fmt: skip
            wrong.append(f"{url}: {got} {error.get('message')}")
    assert wrong == []
    assert await balance(api, key) == (CREDITS, 0)
    jobs = (await api.get("/api/v1/tryon", headers=auth(key))).json()
    assert jobs["data"] == []
    assert canary.connections == 0


async def test_dns_rebinding_through_the_api_connects_to_the_checked_address(
    api: Client, canary: Canary, person_url: str
) -> None:
    """The name answers public first and loopback after: only the first answer is used."""
    answers = iter([[PUBLIC], ["127.0.0.1"], ["127.0.0.1"]])
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    recorder = Recorder()  # answers public addresses itself, passes loopback through for real
    gateway = api.app.state.gateway
    await gateway.fetcher.aclose()
    gateway.fetcher = GuardedFetcher(
        EgressPolicy(timeout=TIMEOUT, max_bytes=MAX_BYTES), resolver=rebinding, transport=recorder
    )
    key, _ = await new_key(api, credits=CREDITS)
    body = {
        "model": "scripted/alpha",
        "person_images": person_url,
        "garment_images": [f"http://rebind.example:{canary.port}/g.png"],
    }
    response = await api.post("/api/v1/tryon", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    assert calls == ["rebind.example"]
    [request] = recorder.requests
    assert (request.url.host, request.headers["host"]) == (PUBLIC, f"rebind.example:{canary.port}")
    assert canary.connections == 0
    assert IMAGE  # the recorder's answer, an 80x80 PNG, is what the gateway took


# -- slow and huge upstreams ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "kind"),
    [
        ("/trickle", 400, "image_download_failed"),
        ("/silent", 400, "image_download_failed"),
        ("/flood-length", 413, "image_too_large"),
        ("/flood-chunked", 413, "image_too_large"),
        ("/flood-close", 413, "image_too_large"),
    ],
)
async def test_slow_and_huge_upstreams_end_within_bounds(
    api: Client, upstream: Upstream, person_url: str, path: str, status: int, kind: str
) -> None:
    key, _ = await new_key(api, credits=CREDITS)
    body = {
        "model": "scripted/alpha",
        "person_images": person_url,
        "garment_images": [upstream.url(path)],
    }
    started = time.monotonic()
    async with asyncio.timeout(TIMEOUT + 5):
        response = await api.post("/api/v1/tryon", json=body, headers=auth(key))
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + 3
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == (kind, "garment_images[0]")
    sent = upstream.sent.get(path, 0)
    print(f"{path}: {response.status_code} after {elapsed:.2f} s, upstream sent {sent} bytes")
    assert sent <= SENT_BOUND, f"{path}: the upstream sent {sent} bytes"
    if path == "/trickle":
        assert sent < 200  # the deadline, not the 100000 declared bytes, ended it
    assert await balance(api, key) == (CREDITS, 0)


async def test_an_allowed_upstream_still_serves(
    api: Client, upstream: Upstream, person_url: str
) -> None:
    """The control: the same gateway fetches from the allowed upstream, redirects and all."""
    key, _ = await new_key(api, credits=CREDITS)
    body = {
        "model": "scripted/alpha",
        "person_images": upstream.url("/person.jpg"),
        "garment_images": [upstream.url("/chain/2")],  # three redirects
    }
    response = await api.post("/api/v1/tryon", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
