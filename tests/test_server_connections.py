"""Slow, silent and too many connections against ``tryon serve`` (issue 15, item 9).

Raw sockets against a real ``tryon serve`` process with small ``[server]`` limits: a connection
that sends nothing, or trickles its headers, is closed after ``header_timeout_seconds``; one
idle after a request, after ``keep_alive_seconds``; connections past
``max_connections_per_client`` from one address get 429 and past ``max_connections`` in all
503, while other clients are served. Client addresses are distinct loopback addresses
(127.0.0.2, 127.0.0.3, ...), which Linux routes to the server on 127.0.0.1.

Every test runs against each HTTP parser, h11 and httptools (``[server] http``).

Bounds here are generous deadlines for something to happen at all, never measurements.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.served import Gateway, configured

DEADLINE = 30.0
"""Seconds within which the server must have done what a test waits for."""
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n"


def _gateway(directory: Path, server: str) -> Iterator[Gateway]:
    gateway = configured(directory, f"sqlite+aiosqlite:///{directory}/tryon.db", server=server)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


PARSERS = ["h11", "httptools"]
"""``[server] http``: each HTTP parser is guarded alike."""


@pytest.fixture(scope="module", params=PARSERS)
def impatient(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Gateway]:
    """A gateway that waits one second for headers and one second between requests."""
    server = f"header_timeout_seconds = 1\nkeep_alive_seconds = 1\nhttp = '{request.param}'"
    yield from _gateway(tmp_path_factory.mktemp("impatient"), server)


@pytest.fixture(params=PARSERS)
def crowded(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Gateway]:
    """A gateway that admits three connections per client address and six in all."""
    server = (
        "max_connections_per_client = 3\nmax_connections = 6\nheader_timeout_seconds = 60\n"
        f"http = '{request.param}'"
    )
    yield from _gateway(tmp_path, server)


def _connect(gateway: Gateway, source: str = "127.0.0.1") -> socket.socket:
    client = socket.create_connection(
        ("127.0.0.1", gateway.port), timeout=DEADLINE, source_address=(source, 0)
    )
    client.settimeout(DEADLINE)
    return client


def _read_to_end(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := client.recv(65536):
            received += chunk
    return received


def _read_answer(client: socket.socket) -> bytes:
    """One whole answer (head and ``Content-Length`` body) on a connection kept open."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += client.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += client.recv(65536)
    return head + b"\r\n\r\n" + body


def _closed_by_server(client: socket.socket) -> bool:
    """True if the server has closed ``client`` (or closes it within :data:`DEADLINE`)."""
    try:
        return client.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _health(gateway: Gateway, source: str = "127.0.0.1") -> int:
    """The status of ``GET /healthz`` from ``source`` on a connection of its own."""
    with _connect(gateway, source) as client:
        client.sendall(REQUEST + b"Connection: close\r\n\r\n")
        return _status(_read_to_end(client))


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _error(answer: bytes) -> dict[str, object]:
    error: dict[str, object] = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
    return error


def test_silent_connections_are_closed_and_others_served_meanwhile(impatient: Gateway) -> None:
    silent = [_connect(impatient) for _ in range(20)]
    try:
        assert _health(impatient) == 200  # meanwhile
        assert all(_closed_by_server(client) for client in silent)
    finally:
        for client in silent:
            client.close()
    assert "no complete request headers within 1 s" in impatient.log_since(0)
    parser = "h11" if "http = 'h11'" in impatient.config.read_text() else "httptools"
    assert f"HTTP parser: {parser}" in impatient.log_since(0)


@pytest.mark.parametrize("first", ["opening", "after_a_request"])
def test_headers_trickled_byte_by_byte_are_cut_off(impatient: Gateway, first: str) -> None:
    with _connect(impatient) as client:
        if first == "after_a_request":  # a kept-alive connection: its next request trickles
            client.sendall(REQUEST + b"\r\n")
            assert _status(_read_answer(client)) == 200
        headers = iter(REQUEST + b"X-Pad: " + b"a" * 4000)  # well under h11's header limit
        deadline = time.monotonic() + DEADLINE
        closed = False
        while not closed and time.monotonic() < deadline:
            try:
                client.send(bytes([next(headers)]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            if select.select([client], [], [], 0.05)[0]:
                closed = _closed_by_server(client)
                assert closed, "the server answered headers that never ended"
        assert closed, f"still open after {DEADLINE} s of trickled headers"


def test_an_idle_kept_alive_connection_is_closed(impatient: Gateway) -> None:
    with _connect(impatient) as client:
        client.sendall(REQUEST + b"\r\n")
        assert _status(_read_answer(client)) == 200
        assert _closed_by_server(client)


def test_connections_past_the_per_client_limit_are_refused(crowded: Gateway) -> None:
    held = [_connect(crowded) for _ in range(3)]
    try:
        with _connect(crowded) as fourth:
            answer = _read_to_end(fourth)
        assert _status(answer) == 429, answer
        assert _error(answer)["type"] == "rate_limit_exceeded"
        assert _health(crowded, "127.0.0.2") == 200  # another client is served meanwhile
    finally:
        for client in held:
            client.close()
    _until_served(crowded)
    assert "refused a connection from 127.0.0.1: 3 open from that address" in crowded.log_since(0)


def test_connections_past_the_total_limit_get_503(crowded: Gateway) -> None:
    held = [_connect(crowded, source) for source in ["127.0.0.2"] * 3 + ["127.0.0.3"] * 3]
    try:
        with _connect(crowded, "127.0.0.4") as seventh:
            answer = _read_to_end(seventh)
        assert _status(answer) == 503, answer
        assert _error(answer)["type"] == "service_unavailable"
    finally:
        for client in held:
            client.close()
    _until_served(crowded, "127.0.0.4")


def test_websockets_give_their_place_back(crowded: Gateway) -> None:
    ws_url = crowded.url.replace("http", "ws") + "/api/v1/tryon/gen_missing/ws?token=1.bad"
    for _ in range(5):  # more than the three a client may hold at once
        with connect(ws_url, open_timeout=DEADLINE) as socket_, pytest.raises(ConnectionClosed):
            while True:
                socket_.recv(timeout=DEADLINE)
        _until_served(crowded)
    with httpx.Client(base_url=crowded.url) as http:
        assert http.get("/healthz").status_code == 200


def _until_served(gateway: Gateway, source: str = "127.0.0.1") -> None:
    """Wait until ``source`` is served again: the server has seen its connections close."""
    deadline = time.monotonic() + DEADLINE
    while (status := _health(gateway, source)) != 200:
        assert status == 429 or status == 503, status
        assert time.monotonic() < deadline, f"{source} still refused after {DEADLINE} s"
        time.sleep(0.05)
