"""Idempotency-Key on POST /api/v1/tryon: sync and async, sequential and racing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from tests.helpers import auth, live_server, new_key, own_database
from tests.jobs_helpers import money, wait_for
from tryon_core import billing
from tryon_core.db.schema import generations
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep

Client = AsyncTestClient[Litestar]


async def count_generations(app: Litestar | Client) -> int:
    async with own_database(app) as database, database.reading() as conn:
        return int(await conn.scalar(select(func.count()).select_from(generations)) or 0)


async def test_a_burst_of_duplicate_async_submissions_creates_one_job(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Any,
) -> None:
    scripted.script("scripted/alpha", Sleep(0.3))
    app = make_app(database_url)
    async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        key, account = await new_key(app, credits=10)
        headers = {**auth(key), "Idempotency-Key": "order-1234"}
        body = tryon_body(model="scripted/alpha", mode="async")
        answers = await asyncio.gather(
            *(http.post("/api/v1/tryon", json=body, headers=headers) for _ in range(20))
        )
        assert {a.status_code for a in answers} == {202}
        assert len({a.content for a in answers}) == 1  # the same job, byte for byte
        assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 19
        job_id = answers[0].json()["jobId"]
        for _ in range(200):
            done = (await http.get(f"/api/v1/tryon/{job_id}", headers=auth(key))).json()
            if done["status"] == "completed":
                break
            await asyncio.sleep(0.05)
        assert done["status"] == "completed"
        assert await count_generations(app) == 1
        assert len(scripted.calls) == 1
        assert await money(app, account) == (7, 0, 7, 0)


async def test_sync_retry_with_the_same_key_is_answered_again_and_charged_once(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    headers = {**auth(key), "Idempotency-Key": "sync-1"}
    first = await client.post("/api/v1/tryon", json=tryon_body(), headers=headers)
    again = await client.post("/api/v1/tryon", json=tryon_body(), headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert again.headers["idempotent-replayed"] == "true"
    assert len(scripted.calls) == 1
    assert await count_generations(client) == 1
    charged = first.json()["usage"]["credits"]
    assert await money(client, account) == (10 - charged, 0, 10 - charged, 0)


async def test_the_same_key_with_another_body_is_422_and_changes_nothing(
    client: Client, tryon_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    headers = {**auth(key), "Idempotency-Key": "k-1"}
    first = await client.post(
        "/api/v1/tryon", json=tryon_body(mode="async", model="scripted/beta"), headers=headers
    )
    assert first.status_code == 202
    await wait_for(client, key, first.json()["jobId"])
    for changed in (
        tryon_body(mode="async", model="scripted/alpha"),
        tryon_body(model="scripted/beta"),  # sync instead of async
        tryon_body(mode="async", model="scripted/beta", webhook_url="https://example.com/h"),
    ):
        response = await client.post("/api/v1/tryon", json=changed, headers=headers)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["type"] == "idempotency_key_reused"
        assert error["param"] == "Idempotency-Key"
    assert await count_generations(client) == 1
    assert await money(client, account) == (8, 0, 8, 0)


async def test_keys_are_per_account(client: Client, tryon_body: Any) -> None:
    one, _ = await new_key(client)
    two, _ = await new_key(client)
    body = tryon_body(mode="async")
    a = await client.post("/api/v1/tryon", json=body, headers={**auth(one), "Idempotency-Key": "x"})
    b = await client.post("/api/v1/tryon", json=body, headers={**auth(two), "Idempotency-Key": "x"})
    assert a.status_code == b.status_code == 202
    assert a.json()["jobId"] != b.json()["jobId"]


async def test_a_refused_submission_does_not_use_up_the_key(
    client: Client, tryon_body: Any
) -> None:
    key, account = await new_key(client, credits=2)
    headers = {**auth(key), "Idempotency-Key": "retry-after-topup"}
    body = tryon_body(mode="async", model="scripted/alpha")
    refused = await client.post("/api/v1/tryon", json=body, headers=headers)
    assert refused.status_code == 402
    async with own_database(client) as database, database.transaction() as conn:
        await billing.grant(conn, account, 10)
    accepted = await client.post("/api/v1/tryon", json=body, headers=headers)
    assert accepted.status_code == 202
