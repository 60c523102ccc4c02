"""``tryon serve --workers 2``, as an operator runs it: two processes serve one port, requests
spread across both (the ``pid`` of the JSON log says which served each; on Linux, where each
has a listening socket of its own, evenly), credits stay exact, metrics add up across them, an
async job submitted to either completes and its WebSocket sees it, a child killed outright is
replaced while the other keeps serving the port, SIGTERM stops every process gracefully, and a
child that cannot start (nor bind the port) stops them all.

The Kling fake (submit-poll) runs in this process. On both databases.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from tryon_kling.fake import TEST_ACCESS_KEY, TEST_SECRET_KEY
from tryon_kling.fake import create_app as kling_fake
from websockets.asyncio.client import connect

from tests.helpers import SAMPLES, auth, data_url
from tests.replicas import messages
from tests.served import Gateway, balances, configured, new_account, wait_until
from tryon_core.server.processes import CHILD_PATIENCE, REUSE_PORT
from tryon_core.testing.server import serve_app_in_thread

MODEL = "kling/kolors-v1-5"
PRICE = 7
CREDITS = 1000
PROCESSES = 2
JOBS = 4
BATCH = 32
SERVED = "POST /api/v1/tryon 200"


@pytest.fixture
def fake() -> Iterator[str]:
    with serve_app_in_thread(kling_fake()) as url:
        yield url


@pytest.fixture
def gateway(tmp_path: Path, database_url: str, fake: str) -> Iterator[Gateway]:
    served = configured(
        tmp_path,
        database_url,
        f"""[jobs]
sweep_interval_seconds = 0.5
[metrics]
enabled = true
[providers.kling]
enabled = true
base_url = "{fake}"
access_key = "{TEST_ACCESS_KEY}"
secret_key = "{TEST_SECRET_KEY}"
poll_interval = 0.05
""",
        options=("--workers", str(PROCESSES), "--log-format", "json"),
    )
    served.start()
    try:
        wait_until(
            lambda: len(_pids(served, "Application startup complete.")) == PROCESSES,
            "both processes to start",
            timeout=180,
        )
        yield served
    finally:
        served.stop()


def _lines(gateway: Gateway) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gateway.log_since(0).splitlines() if line.startswith("{")]


def _pids(gateway: Gateway, message: str) -> set[int]:
    """The processes that logged a line starting with ``message``."""
    return {line["pid"] for line in _lines(gateway) if line["message"].startswith(message)}


def _body(**fields: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "person_images": data_url(SAMPLES / "person.jpg", "image/jpeg"),
        "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
        **fields,
    }


def _try_on(url: str, key: str) -> int:
    """One sync try-on on a connection of its own (so that either process may take it)."""
    with httpx.Client(base_url=url, headers=auth(key), timeout=60) as client:
        return client.post("/api/v1/tryon", json=_body()).status_code


def test_two_processes_serve_exactly_and_stop_together(gateway: Gateway, database_url: str) -> None:
    """One run (a start costs seconds): sync requests, then async jobs, then SIGTERM."""
    started = _pids(gateway, "Application startup complete.")
    assert _pids(gateway, "start-up heap frozen") == started  # each child froze its own
    key, account = asyncio.run(new_account(database_url, credits=CREDITS))
    sent = _spread_requests(gateway, key)
    _run_jobs(gateway, key)
    spent = (sent + JOBS) * PRICE
    assert asyncio.run(balances(database_url, account)) == (
        CREDITS - spent,
        0,
        CREDITS - spent,
        0,
    )
    _replace_a_killed_child(gateway)
    _stop_all(gateway)


def _spread_requests(gateway: Gateway, key: str) -> int:
    """Sync try-ons, each on a connection of its own, until both processes served some; how
    many were sent. With a socket per process (Linux) the kernel spreads the first batch:
    each serves at least an eighth of it (a fair coin falls short with odds ~1e-6). Metrics
    count each once, whichever process served it or is scraped."""
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while len(_pids(gateway, SERVED)) < PROCESSES:
            assert sent < 5 * BATCH, f"{sent} requests all served by {_pids(gateway, SERVED)}"
            statuses = list(pool.map(lambda _: _try_on(gateway.url, key), range(BATCH)))
            assert statuses == [200] * BATCH
            sent += BATCH
            wait_until(lambda n=sent: len(_served(gateway)) == n, "a log line per request")
    if REUSE_PORT:
        shares = Counter(_served(gateway))
        assert sent == BATCH and min(shares.values()) >= BATCH // 8, shares
    scrape = httpx.get(f"{gateway.url}/metrics", timeout=30).text  # either process: the sum
    counted = re.search(
        r'^tryon_http_requests_total\{method="POST",route="/api/v1/tryon",status="200"\} (\S+)$',
        scrape,
        re.MULTILINE,
    )
    assert counted is not None and float(counted.group(1)) == sent
    return sent


def _served(gateway: Gateway) -> list[int]:
    """The pid of each sync try-on served so far, one per request."""
    return [line["pid"] for line in _lines(gateway) if line["message"].startswith(SERVED)]


def _run_jobs(gateway: Gateway, key: str) -> None:
    """Async jobs, each followed on a socket of its own until it completes: some socket is
    likely in the process that did not run its job (on SQLite it re-reads every sweep)."""
    with httpx.Client(base_url=gateway.url, headers=auth(key), timeout=30) as client:
        answers = [client.post("/api/v1/tryon", json=_body(mode="async")) for _ in range(JOBS)]
    assert [answer.status_code for answer in answers] == [202] * JOBS
    links = [urlsplit(answer.json()["wsUrl"]) for answer in answers]
    sockets = [f"ws://{urlsplit(gateway.url).netloc}{u.path}?{u.query}" for u in links]

    async def follow_all() -> list[list[dict[str, Any]]]:
        return await asyncio.gather(*(_follow(url) for url in sockets))

    for received in asyncio.run(follow_all()):
        assert received[-1]["job"]["status"] == "completed", received[-1]


async def _follow(url: str) -> list[dict[str, Any]]:
    async with connect(url) as socket:
        return await messages(socket)


def _replace_a_killed_child(gateway: Gateway) -> None:
    """A child killed outright is replaced; the port is served throughout: once the victim
    is gone (its socket with it), every new connection reaches the other child while the
    replacement is still starting."""
    victim = min(_pids(gateway, "Started server process"))
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not _alive(victim), "the killed child to be gone")
    for _ in range(BATCH // 2):
        with httpx.Client(timeout=30) as client:  # a connection of its own
            assert client.get(f"{gateway.url}/healthz").status_code == 200
    wait_until(
        lambda: len(_pids(gateway, "Application startup complete.") - {victim}) == PROCESSES,
        "a new child in place of the killed one",
        timeout=180,  # a start takes seconds, many more on a loaded machine
    )
    assert httpx.get(f"{gateway.url}/healthz", timeout=30).status_code == 200


def _stop_all(gateway: Gateway) -> None:
    """SIGTERM to the parent: every child shuts down gracefully and is gone."""
    children = {pid for pid in _pids(gateway, "Started server process") if _running(pid)}
    assert len(children) == PROCESSES
    assert gateway.terminate(within=60) == 0
    assert _pids(gateway, "Application shutdown complete.") == children
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _alive(pid: int) -> bool:
    """Running, not a zombie its parent has yet to reap (a zombie's sockets are closed)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_child_that_cannot_start_stops_them_all(tmp_path: Path) -> None:
    """A section no installed plugin provides: every child's app fails to build and, rather
    than restarting them for ever, the parent exits with status 3; as soon as a child has
    died, not after waiting out the health ping's patience for an answer that cannot come."""
    served = configured(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path}/tryon.db",
        "[providers.nosuch]\nenabled = true",
        options=("--workers", str(PROCESSES)),
    )
    served.launch()
    assert served.process is not None
    assert served.process.wait(timeout=CHILD_PATIENCE / 2) == 3, served.tail()
    assert "configuration error: providers.nosuch: no installed plugin provides it" in served.tail()


def test_a_port_in_use_stops_the_parent(tmp_path: Path) -> None:
    """Another program listening on the port (even one that shares it with ``SO_REUSEPORT``,
    like a second ``tryon serve --workers``): exit 3 before any child is started, rather than
    sharing the port with it."""
    served = configured(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path}/tryon.db",
        options=("--workers", str(PROCESSES)),
    )
    with socket.socket() as other:
        if REUSE_PORT:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", served.port))
        other.listen()
        served.launch()
        assert served.process is not None
        assert served.process.wait(timeout=120) == 3, served.tail()
    assert "Address already in use" in served.tail()
    assert "Started server process" not in served.tail()
