"""The gateway's own dependencies failing: the database away, the file store full.

The database outage is real but private to the test: the gateway reaches PostgreSQL through a
TCP proxy in the test's event loop, which the test cuts (closes its listener and every live
connection) and restores; the machine's PostgreSQL itself is never touched. The full disk is
real too: the file store is a 256 KiB tmpfs mounted for the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import select

from tests.helpers import auth, live_server, new_key, own_database
from tests.tcp_proxy import TcpProxy
from tryon_core import billing
from tryon_core.accounts import get_account
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.db.schema import files, generations
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep

BOUND = 10.0
"""No request may take longer than this to answer while the database is away."""


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def _settings(database_url: str, store: Path, extra: str = "", *, timeout: float = 10.0) -> Any:
    return parse_settings(
        f"""
[database]
url = "{database_url}"
timeout = {timeout}
[storage]
path = "{store}"
signing_secret = "test-secret"
[jobs]
sweep_interval_seconds = 0.5
[providers.scripted]
enabled = true
timeout = 5.0
{extra}
"""
    )


async def _ledger_matches(app: Litestar, account_id: str) -> tuple[int, int]:
    async with own_database(app) as database, database.reading() as conn:
        account = await get_account(conn, account_id)
        totals = await billing.ledger_totals(conn, account_id)
    assert (account.balance, account.reserved) == totals
    return account.balance, account.reserved


async def _timed(coro: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await asyncio.wait_for(coro, BOUND)
    return response, time.monotonic() - started


def _is_503(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and response.json()["error"]["type"] == "service_unavailable"
        and int(response.headers.get("retry-after", "0")) >= 1
    )


# -- the database away ----------------------------------------------------------------------


@pytest.mark.postgres
async def test_database_outage_answers_503_and_recovers_without_a_restart(
    postgres_database_url: str, tmp_path: Path, tryon_body: Any
) -> None:
    target = urlsplit(postgres_database_url)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 5432))
    await proxy.start()
    scripted = ScriptedProvider()
    app = create_app(
        _settings(_through(postgres_database_url, proxy.port), tmp_path / "files"),
        extra_plugins=[scripted],
        load_entry_points=False,
    )
    price = 3  # scripted/alpha
    try:
        async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            key, account = await new_key(app, credits=100)
            body = tryon_body(model="scripted/alpha")
            assert (
                await http.post("/api/v1/tryon", json=body, headers=auth(key))
            ).status_code == 200

            # one request is with the upstream when the database goes; one job is queued
            scripted.script("scripted/alpha", Sleep(1.0))
            in_flight = asyncio.create_task(
                http.post("/api/v1/tryon", json=body, headers=auth(key))
            )
            await asyncio.sleep(0.5)
            await proxy.cut()
            cut_at = time.monotonic()

            answers = {
                "tryon": await _timed(http.post("/api/v1/tryon", json=body, headers=auth(key))),
                "async": await _timed(
                    http.post("/api/v1/tryon", json={**body, "mode": "async"}, headers=auth(key))
                ),
                "credits": await _timed(http.get("/api/v1/credits", headers=auth(key))),
                "readyz": await _timed(http.get("/readyz")),
            }
            for name, (response, _) in answers.items():
                assert _is_503(response), (name, response.status_code, response.text)
            assert (await http.get("/healthz")).status_code == 200  # the process is alive
            stranded = await asyncio.wait_for(in_flight, BOUND)
            assert _is_503(stranded), (stranded.status_code, stranded.text)

            await asyncio.sleep(1.0)
            await proxy.restore()
            restored_at = time.monotonic()
            while (await http.get("/readyz")).status_code != 200:
                assert time.monotonic() - restored_at < BOUND, "never ready again"
                await asyncio.sleep(0.05)
            ready_after = time.monotonic() - restored_at

            response = await http.post("/api/v1/tryon", json=body, headers=auth(key))
            assert response.status_code == 200, response.text
            served_after = time.monotonic() - restored_at
            # the stranded request's reservation comes back by itself
            while True:
                credits = (await http.get("/api/v1/credits", headers=auth(key))).json()
                if credits["reserved"] == 0:
                    break
                assert time.monotonic() - restored_at < BOUND, f"still held: {credits}"
                await asyncio.sleep(0.1)
            released_after = time.monotonic() - restored_at
        balance, reserved = await _ledger_matches(app, account)
        assert (balance, reserved) == (100 - 2 * price, 0)
        async with own_database(app) as database, database.reading() as conn:
            keys = {row.storage_key for row in await conn.execute(select(files.c.storage_key))}
        assert _listing(tmp_path / "files") == keys, "a result file without its row was left"
        print(
            f"\noutage answered 503 in <= {max(t for _, t in answers.values()):.2f} s; "
            f"ready {ready_after:.2f} s after the database came back, served after "
            f"{served_after:.2f} s, stranded reservation released after {released_after:.2f} s "
            f"(down {restored_at - cut_at:.1f} s)"
        )
    finally:
        await proxy.close()


@pytest.mark.postgres
async def test_a_database_that_stops_answering_is_an_outage_not_a_hang(
    postgres_database_url: str, tmp_path: Path, tryon_body: Any
) -> None:
    """Connections stay open but nothing comes back: `[database] timeout` turns that into
    503s, and once the database answers again the same gateway serves again."""
    target = urlsplit(postgres_database_url)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 5432))
    await proxy.start()
    app = create_app(
        _settings(_through(postgres_database_url, proxy.port), tmp_path / "files", timeout=1.0),
        extra_plugins=[ScriptedProvider()],
        load_entry_points=False,
    )
    try:
        async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            key, account = await new_key(app, credits=10)
            body = tryon_body(model="scripted/alpha")
            assert (
                await http.post("/api/v1/tryon", json=body, headers=auth(key))
            ).status_code == 200
            proxy.frozen = True
            for request in (
                http.post("/api/v1/tryon", json=body, headers=auth(key)),
                http.get("/api/v1/credits", headers=auth(key)),
                http.get("/readyz"),
            ):
                response, took = await _timed(request)
                assert _is_503(response), (response.status_code, response.text)
                assert took < BOUND
            proxy.frozen = False
            await proxy.cut()  # the frozen connections are dead to the pool; start afresh
            await proxy.restore()
            restored_at = time.monotonic()
            while (await http.get("/readyz")).status_code != 200:
                assert time.monotonic() - restored_at < BOUND, "never ready again"
                await asyncio.sleep(0.05)
            assert (
                await http.post("/api/v1/tryon", json=body, headers=auth(key))
            ).status_code == 200
        assert await _ledger_matches(app, account) == (10 - 2 * 3, 0)
    finally:
        await proxy.close()


# -- the file store full --------------------------------------------------------------------


@pytest.fixture
def full_store(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs for the file store, filled to the last byte."""
    mount = tmp_path / "store"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> None:
    fd = os.open(folder / "ballast", os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    assert os.statvfs(folder).f_bavail == 0


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


async def test_a_full_file_store_fails_cleanly_and_holds_nothing(
    full_store: Path, tmp_path: Path, tryon_body: Any
) -> None:
    scripted = ScriptedProvider()
    settings = _settings(f"sqlite+aiosqlite:///{tmp_path}/tryon.db", full_store)
    app = create_app(settings, extra_plugins=[scripted], load_entry_points=False)
    async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        key, account = await new_key(app, credits=100)
        body = tryon_body(model="scripted/alpha")
        _fill(full_store)
        before = _listing(full_store)

        sync = await http.post("/api/v1/tryon", json=body, headers=auth(key))
        assert _is_503(sync), (sync.status_code, sync.text)
        queued = await http.post("/api/v1/tryon", json={**body, "mode": "async"}, headers=auth(key))
        assert _is_503(queued), (queued.status_code, queued.text)
        credits = (await http.get("/api/v1/credits", headers=auth(key))).json()
        assert (credits["balance"], credits["reserved"]) == (100, 0)

        assert _listing(full_store) == before, "a half-written file was left behind"
        async with own_database(app) as database, database.reading() as conn:
            rows = (await conn.execute(select(generations.c.status, generations.c.mode))).all()
            kept = (await conn.execute(select(files.c.id))).all()
        assert [tuple(r) for r in rows] == [("failed", "sync")]  # the job was never created
        assert kept == []

        (full_store / "ballast").unlink()  # room again: the same gateway serves
        response = await http.post("/api/v1/tryon", json=body, headers=auth(key))
        assert response.status_code == 200, response.text
    assert await _ledger_matches(app, account) == (97, 0)


class _CutAfterPut:
    """The gateway's file store, which cuts the database right after it keeps a result."""

    def __init__(self, store: Any, proxy: TcpProxy) -> None:
        self.store = store
        self.proxy = proxy
        self.armed = False

    async def put(self, key: str, data: bytes) -> None:
        await self.store.put(key, data)
        if self.armed:
            self.armed = False
            await self.proxy.cut()

    async def get(self, key: str) -> bytes:
        data: bytes = await self.store.get(key)
        return data

    async def delete(self, key: str) -> None:
        await self.store.delete(key)


@pytest.mark.postgres
async def test_database_lost_between_storing_and_recording_keeps_no_file(
    postgres_database_url: str, tmp_path: Path, tryon_body: Any
) -> None:
    target = urlsplit(postgres_database_url)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 5432))
    await proxy.start()
    app = create_app(
        _settings(_through(postgres_database_url, proxy.port), tmp_path / "files"),
        extra_plugins=[ScriptedProvider()],
        load_entry_points=False,
    )
    gateway = app.state.gateway
    cutter = _CutAfterPut(gateway.store, proxy)
    gateway.store = cutter
    try:
        async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            key, account = await new_key(app, credits=100)
            body = tryon_body(model="scripted/alpha")
            cutter.armed = True
            response = await asyncio.wait_for(
                http.post("/api/v1/tryon", json=body, headers=auth(key)), BOUND
            )
            assert _is_503(response), (response.status_code, response.text)
            assert _listing(tmp_path / "files") == set(), "the result outlived its failure"
            await proxy.restore()
            end = time.monotonic() + BOUND
            while (await http.get("/api/v1/credits", headers=auth(key))).json()["reserved"]:
                assert time.monotonic() < end, "the reservation was never released"
                await asyncio.sleep(0.1)
        assert await _ledger_matches(app, account) == (100, 0)
    finally:
        await proxy.close()
