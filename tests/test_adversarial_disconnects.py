"""Clients that hang up at any moment, through a real server (issue 15, findings 1 to 3).

A hostile or flaky client cuts its connection after a random delay: while its body is read,
while its idempotency key is claimed, while its job or generation is written, while its
credits are reserved. Whatever the moment:

* one ``Idempotency-Key`` gives at most one generation and one charge, and a retry answers
  promptly (the stored answer, or ``409`` with ``Retry-After`` while the first still runs);
* a sync request whose client left is released at once, not at its deadline;
* nothing keeps SQLite's write lock: the gateway answers throughout;
* the ledger sums to the balance and nothing stays reserved once the work is over.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import func, select

from tests.helpers import auth, live_server, new_key, own_database
from tests.jobs_helpers import money
from tryon_core.db.engine import sqlite_takes_a_write
from tryon_core.db.schema import generations
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep


async def _hang_up(url: str, path: str, body: bytes, headers: dict[str, str], after: float) -> None:
    """Send a whole request, then close the connection after ``after`` seconds, unread."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()
    await asyncio.sleep(after)
    writer.transport.abort()  # a reset, as a client that dies sends
    del reader


@pytest.fixture
def slow_commits(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    """SQLite commits that take 20 ms in the driver's thread, as on a slow disk: a hang-up
    lands inside a COMMIT often (a PostgreSQL commit is a round trip and is hit anyway)."""
    if not database_url.startswith("sqlite"):
        return
    import aiosqlite

    async def commit(self: aiosqlite.Connection) -> None:
        def slow() -> None:
            time.sleep(0.02)
            self._conn.commit()

        await self._execute(slow)

    monkeypatch.setattr(aiosqlite.Connection, "commit", commit)


def _sqlite_path(app: Litestar) -> Path:
    return Path(app.state.gateway.settings.database.url.split("///", 1)[1])


def _can_write(path: Path) -> bool:
    """The write lock can be had within 2 s (background work takes it for moments; a lock
    left behind by a cut transaction would hold it for minutes)."""
    return sqlite_takes_a_write(path, wait=2)


async def _retry(http: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]) -> Any:
    """Retry until the key's answer is final; every single answer must come promptly."""
    for _ in range(200):
        answer = await http.post("/api/v1/tryon", json=body, headers=headers, timeout=10.0)
        if answer.status_code != 409:
            return answer
        assert answer.json()["error"]["type"] == "idempotency_key_in_progress"
        assert int(answer.headers["retry-after"]) >= 1
        await asyncio.sleep(0.1)
    raise AssertionError("the key stayed in progress")


@pytest.mark.parametrize("seed", range(3))
async def test_hang_ups_with_idempotency_keys_never_charge_twice(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
    seed: int,
    slow_commits: None,
) -> None:
    rng = random.Random(seed)
    app = make_app(database_url)
    async with live_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        key, account = await new_key(app, credits=10_000)
        bodies: dict[str, dict[str, Any]] = {}
        cuts = []
        for index in range(36):
            idem = f"probe-{seed}-{index}"
            body = tryon_body(model="scripted/alpha", mode=rng.choice(["async", "sync"]))
            bodies[idem] = body
            headers = auth(key) | {"Content-Type": "application/json", "Idempotency-Key": idem}
            after = rng.uniform(0.0, 0.08)
            cuts.append(_hang_up(url, "/api/v1/tryon", msgspec.json.encode(body), headers, after))
            if len(cuts) == 3:  # a few at a time: each is cut at a moment of its own work
                await asyncio.gather(*cuts)
                cuts = []

        ids = set()
        for idem, body in bodies.items():
            answer = await _retry(http, body, auth(key) | {"Idempotency-Key": idem})
            assert answer.status_code in (200, 202), answer.text
            ids.add(answer.json()["id" if answer.status_code == 200 else "jobId"])
        for _ in range(300):  # async jobs finish
            balance, reserved, ledger, _ = await money(app, account)
            if reserved == 0:
                break
            await asyncio.sleep(0.05)
        async with own_database(app) as database, database.reading() as conn:
            charged = (
                await conn.execute(
                    select(generations.c.id).where(generations.c.credits_charged > 0)
                )
            ).all()
            open_ = await conn.scalar(select(func.count()).where(generations.c.settled.is_(False)))
        assert {row.id for row in charged} <= ids, "a key was charged for a second generation"
        assert len(charged) == len(ids), "every key's one generation was charged once"
        assert open_ == 0 and reserved == 0
        assert balance == ledger == 10_000 - 3 * len(ids)
        if database_url.startswith("sqlite"):
            assert _can_write(_sqlite_path(app)), "something still holds the write lock"


async def test_a_sync_request_whose_client_left_is_released_at_once(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
    slow_commits: None,
) -> None:
    """Cut while the generation row and its reservation are being written: released at
    once ("cancelled"), or by the next sweep if the database was busy then; never left
    processing until the sync deadline."""
    rng = random.Random(7)
    for _ in range(40):
        scripted.script("scripted/alpha", Sleep(0.5))
    app = make_app(database_url)
    async with live_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        key, account = await new_key(app, credits=10_000)
        body = msgspec.json.encode(tryon_body(model="scripted/alpha"))
        headers = auth(key) | {"Content-Type": "application/json"}
        for _ in range(20):
            await asyncio.gather(
                *(
                    _hang_up(url, "/api/v1/tryon", body, headers, rng.uniform(0.0, 0.08))
                    for _ in range(2)
                )
            )
        # cancellations settle within moments, far before any deadline; a release that found
        # the database busy (slow commits, a loaded machine) is the next sweep's (every 5 s)
        for _ in range(600):
            balance, reserved, ledger, _ = await money(app, account)
            if reserved == 0:
                break
            await asyncio.sleep(0.05)
        assert reserved == 0, "credits stayed held after the client left"
        assert balance == ledger
        async with own_database(app) as database, database.reading() as conn:
            rows = (await conn.execute(select(generations.c.status, generations.c.error))).all()
        assert all(row.status in ("completed", "failed") for row in rows)
        for row in rows:
            if row.status == "failed":
                assert row.error["type"] == "cancelled", row.error
        assert (await http.get("/readyz")).status_code == 200
