"""Idempotency keys under real concurrency: a uvicorn server on 127.0.0.1, many clients at once.

Litestar's test client runs the app in a loop of its own, one request at a time; only a real
server lets duplicate requests overlap inside the gateway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import func, insert, select

from tests.helpers import auth, live_server, new_key, own_database, started_gateway
from tryon_core import accounts, billing
from tryon_core.config import Settings
from tryon_core.db.schema import idempotency_keys, ledger
from tryon_core.idempotency import purge_expired_keys
from tryon_core.ids import utcnow
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep

ENDPOINT = "/api/v1/chat/completions"
BURST = 20


@pytest.fixture
def chat_body(person_url: str, garment_url: str) -> Callable[..., dict[str, Any]]:
    def body(*, text: str = "Put this shirt on this person") -> dict[str, Any]:
        content = [
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": person_url}},
            {"type": "image_url", "image_url": {"url": garment_url}},
        ]
        return {"model": "scripted/alpha", "messages": [{"role": "user", "content": content}]}

    return body


@asynccontextmanager
async def served(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=BURST * 2)
    async with (
        live_server(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as http,
    ):
        yield http


async def charges(app: Litestar, account_id: str) -> tuple[int, billing.LedgerTotals]:
    async with own_database(app) as database, database.reading() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(ledger)
            .where(ledger.c.account_id == account_id, ledger.c.kind == "capture")
        )
        totals = await billing.ledger_totals(conn, account_id)
    return int(count or 0), totals


async def test_a_burst_of_duplicate_submissions_runs_once_and_charges_once(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    chat_body: Any,
) -> None:
    scripted.script("scripted/alpha", Sleep(0.3))
    app = make_app(database_url)
    async with served(app) as http:
        key, account = await new_key(app, credits=3)  # enough for one generation only
        headers = auth(key) | {"Idempotency-Key": "burst"}
        started = time.monotonic()
        responses = await asyncio.gather(
            *(http.post(ENDPOINT, json=chat_body(), headers=headers) for _ in range(BURST))
        )
        elapsed = time.monotonic() - started
        credits = (await http.get("/api/v1/credits", headers=auth(key))).json()
    assert [r.status_code for r in responses] == [200] * BURST
    assert len({r.content for r in responses}) == 1
    replayed = [r.headers.get("idempotent-replayed") for r in responses]
    assert replayed.count(None) == 1 and replayed.count("true") == BURST - 1
    assert len(scripted.calls) == 1
    assert elapsed < BURST * 0.3  # they overlapped: none waited for a run of its own
    assert (credits["balance"], credits["reserved"]) == (0, 0)
    assert await charges(app, account) == (1, billing.LedgerTotals(0, 0))


async def test_racing_requests_with_one_key_and_two_bodies(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    chat_body: Any,
) -> None:
    """One body wins the key; its twins replay it, the other body's requests get 422."""
    scripted.script("scripted/alpha", Sleep(0.3))
    app = make_app(database_url)
    bodies = [chat_body(text="first"), chat_body(text="second")] * (BURST // 2)
    async with served(app) as http:
        key, account = await new_key(app, credits=30)
        headers = auth(key) | {"Idempotency-Key": "contested"}
        responses = await asyncio.gather(
            *(http.post(ENDPOINT, json=body, headers=headers) for body in bodies)
        )
    winners = {
        body["messages"][0]["content"][0]["text"]
        for body, r in zip(bodies, responses, strict=True)
        if r.status_code == 200
    }
    assert len(winners) == 1
    for body, response in zip(bodies, responses, strict=True):
        if body["messages"][0]["content"][0]["text"] in winners:
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 422, response.text
            assert response.json()["error"]["type"] == "idempotency_key_reused"
    assert len({r.content for r in responses if r.status_code == 200}) == 1
    assert len(scripted.calls) == 1
    assert (await charges(app, account))[0] == 1


async def test_a_burst_refused_for_credits_leaves_the_key_free(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    chat_body: Any,
) -> None:
    app = make_app(database_url)
    async with served(app) as http:
        key, account = await new_key(app, credits=0)
        headers = auth(key) | {"Idempotency-Key": "broke"}
        responses = await asyncio.gather(
            *(http.post(ENDPOINT, json=chat_body(), headers=headers) for _ in range(5))
        )
        assert [r.status_code for r in responses] == [402] * 5
        async with own_database(app) as database, database.transaction() as conn:
            await billing.grant(conn, account, 3)
        retried = await http.post(ENDPOINT, json=chat_body(), headers=headers)
    assert retried.status_code == 200, retried.text
    assert len(scripted.calls) == 1


async def test_a_client_that_leaves_frees_its_key_and_is_not_charged(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    chat_body: Any,
) -> None:
    scripted.script("scripted/alpha", Sleep(3.0))
    app = make_app(database_url)
    async with served(app) as http:
        key, account = await new_key(app, credits=3)
        headers = auth(key) | {"Idempotency-Key": "impatient"}
        request = asyncio.create_task(http.post(ENDPOINT, json=chat_body(), headers=headers))
        for _ in range(400):  # the upstream has the job: now the client hangs up
            if scripted.calls:
                break
            await asyncio.sleep(0.05)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        for _ in range(100):
            async with own_database(app) as database, database.reading() as conn:
                left = (await conn.execute(select(idempotency_keys))).all()
            if not left:
                break
            await asyncio.sleep(0.05)
        assert left == []
        retried = await http.post(ENDPOINT, json=chat_body(), headers=headers)
    assert retried.status_code == 200, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert len(scripted.calls) == 2
    assert await charges(app, account) == (1, billing.LedgerTotals(0, 0))


async def test_purge_removes_only_expired_keys(
    make_settings: Callable[..., Settings], scripted: ScriptedProvider, database_url: str
) -> None:
    # no served app: its retention loop would purge the same keys at a moment of its own
    async with started_gateway(make_settings(database_url), scripted) as gateway:
        now = utcnow()
        async with gateway.database.transaction() as conn:
            account = await accounts.create_account(conn, name="test")
            await conn.execute(
                insert(idempotency_keys),
                [
                    {
                        "account_id": account,
                        "key": f"k{i}",
                        "route": "chat",
                        "fingerprint": "0" * 64,
                        "status": "done",
                        "created_at": now - timedelta(hours=30),
                        "expires_at": now + timedelta(hours=-6 if i < 3 else 6),
                    }
                    for i in range(5)
                ],
            )
        assert await purge_expired_keys(gateway, batch=2) == 2
        assert await purge_expired_keys(gateway, batch=2) == 1
        assert await purge_expired_keys(gateway) == 0
        async with gateway.database.reading() as conn:
            kept = (await conn.execute(select(idempotency_keys.c.key))).scalars().all()
    assert sorted(kept) == ["k3", "k4"]
