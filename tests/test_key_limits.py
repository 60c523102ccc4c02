"""A key's credit limit, per period, through HTTP, on SQLite and PostgreSQL.

Many requests racing one key's limit: exactly as many pass as the limit covers, the rest get
``402 key_limit_exceeded`` with what is left, the ledger still equals the balance, and what a
failure held goes back into the limit. A stale period starts over at the next reservation.
Setting and changing limits (``POST``/``PATCH /api/v1/keys``) is checked field by field.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from tests.helpers import auth, live_server, new_key, own_database
from tests.jobs_helpers import money
from tryon_core.amounts import MAX_CREDITS
from tryon_core.db.schema import api_keys
from tryon_core.errors import ProviderUnavailable
from tryon_core.ids import utcnow
from tryon_core.limit_periods import period_start
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep

Client = AsyncTestClient[Litestar]
PRICE = 3  # scripted/alpha, one image
REQUESTS = 30


async def limited_key(
    client: Client | httpx.AsyncClient, manager: str, **limits: Any
) -> tuple[str, str]:
    created = await client.post("/api/v1/keys", json=limits, headers=auth(manager))
    assert created.status_code == 201, created.text
    return created.json()["key"], created.json()["data"]["id"]


async def me(client: Client | httpx.AsyncClient, key: str) -> dict[str, Any]:
    response = await client.get("/api/v1/key", headers=auth(key))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def test_racing_requests_never_pass_a_key_limit(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    covered = 7
    scripted.script("scripted/alpha", *[Sleep(0.2)] * REQUESTS)  # so that the requests overlap
    app = make_app(database_url)
    async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=120) as http:
        manager, account = await new_key(app, 1000, scope="management")
        key, _ = await limited_key(http, manager, limit=covered * PRICE + 2, limit_reset="daily")
        body = tryon_body(model="scripted/alpha")
        answers = await asyncio.gather(
            *(http.post("/api/v1/tryon", json=body, headers=auth(key)) for _ in range(REQUESTS))
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] * covered + [402] * (REQUESTS - covered), [
            a.text for a in answers if a.status_code not in (200, 402)
        ]
        for refused in (a.json()["error"] for a in answers if a.status_code == 402):
            assert refused["type"] == "key_limit_exceeded"
            assert refused["metadata"]["limit"] == covered * PRICE + 2
            assert refused["metadata"]["limit_reset"] == "daily"
            assert refused["metadata"]["required"] == PRICE
            assert 0 <= refused["metadata"]["limit_remaining"] < PRICE
        spent = covered * PRICE
        assert await money(app, account) == (1000 - spent, 0, 1000 - spent, 0)  # ledger = balance
        shown = await me(http, key)
        assert (shown["limit"], shown["limit_remaining"], shown["limit_reset"]) == (
            spent + 2,
            2,
            "daily",
        )
        assert shown["usage"] == shown["usage_daily"] == shown["credits_spent"] == spent
        assert shown["usage_weekly"] == shown["usage_monthly"] == spent


async def test_a_failed_generation_gives_its_credits_back_to_the_limit(
    client: Client, scripted: ScriptedProvider, tryon_body: Callable[..., dict[str, Any]]
) -> None:
    manager, account = await new_key(client, 100, scope="management")
    key, _ = await limited_key(client, manager, limit=2 * PRICE)
    scripted.script("scripted/alpha", ProviderUnavailable("down"))
    body = tryon_body(model="scripted/alpha")
    failed = await client.post("/api/v1/tryon", json=body, headers=auth(key))
    assert failed.status_code == 502
    assert (await me(client, key))["limit_remaining"] == 2 * PRICE
    for _ in range(2):
        assert (await client.post("/api/v1/tryon", json=body, headers=auth(key))).status_code == 200
    over = await client.post("/api/v1/tryon", json=body, headers=auth(key))
    assert over.status_code == 402
    assert over.json()["error"]["type"] == "key_limit_exceeded"
    assert over.json()["error"]["metadata"] == {
        "limit": 2 * PRICE,
        "limit_remaining": 0,
        "limit_reset": "none",
        "required": PRICE,
    }
    assert await money(client, account) == (94, 0, 94, 0)
    shown = await me(client, key)
    assert (shown["limit_remaining"], shown["usage"]) == (0, 2 * PRICE)


async def test_async_jobs_and_chat_count_against_the_limit_too(
    client: Client, tryon_body: Callable[..., dict[str, Any]], person_url: str, garment_url: str
) -> None:
    manager, account = await new_key(client, 100, scope="management")
    key, _ = await limited_key(client, manager, limit=2 * PRICE, limit_reset="monthly")
    body = tryon_body(model="scripted/alpha")
    job = await client.post("/api/v1/tryon", json={**body, "mode": "async"}, headers=auth(key))
    assert job.status_code == 202
    chat = {
        "model": "scripted/alpha",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Put this shirt on this person"},
                    {"type": "image_url", "image_url": {"url": person_url}},
                    {"type": "image_url", "image_url": {"url": garment_url}},
                ],
            }
        ],
    }
    answered = await client.post("/api/v1/chat/completions", json=chat, headers=auth(key))
    assert answered.status_code == 200, answered.text
    refused = await client.post("/api/v1/tryon", json={**body, "mode": "async"}, headers=auth(key))
    assert refused.status_code == 402
    assert refused.json()["error"]["type"] == "key_limit_exceeded"
    refused = await client.post("/api/v1/chat/completions", json=chat, headers=auth(key))
    assert refused.status_code == 402
    assert refused.json()["error"]["type"] == "key_limit_exceeded"
    balance, _, ledger_balance, _ = await money(client, account)
    assert balance == ledger_balance == 100 - 2 * PRICE  # the job holds or was charged its part


async def test_a_stale_period_starts_over(
    client: Client, tryon_body: Callable[..., dict[str, Any]]
) -> None:
    manager, _ = await new_key(client, 100, scope="management")
    key, key_id = await limited_key(client, manager, limit=PRICE, limit_reset="daily")
    body = tryon_body(model="scripted/alpha")
    assert (await client.post("/api/v1/tryon", json=body, headers=auth(key))).status_code == 200
    assert (await client.post("/api/v1/tryon", json=body, headers=auth(key))).status_code == 402
    async with own_database(client) as database, database.transaction() as conn:
        await conn.execute(  # as if the day had ended since
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(limit_period_start=period_start("daily", utcnow()) - timedelta(days=1))
        )
    assert (await me(client, key))["limit_remaining"] == PRICE
    assert (await client.post("/api/v1/tryon", json=body, headers=auth(key))).status_code == 200
    shown = await me(client, key)
    assert (shown["limit_remaining"], shown["usage"]) == (0, 2 * PRICE)
    assert (await client.post("/api/v1/tryon", json=body, headers=auth(key))).status_code == 402


async def test_changing_a_limit_counts_the_period_afresh(
    client: Client, tryon_body: Callable[..., dict[str, Any]]
) -> None:
    manager, _ = await new_key(client, 100, scope="management")
    key, key_id = await limited_key(client, manager)
    body = tryon_body(model="scripted/alpha")
    for _ in range(2):
        assert (await client.post("/api/v1/tryon", json=body, headers=auth(key))).status_code == 200
    path = f"/api/v1/keys/{key_id}"
    changed = await client.patch(path, json={"limit": 3 * PRICE}, headers=auth(manager))
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert (data["limit"], data["limit_remaining"], data["limit_reset"]) == (9, PRICE, "none")
    assert (await client.post("/api/v1/tryon", json=body, headers=auth(key))).status_code == 200
    assert (await client.post("/api/v1/tryon", json=body, headers=auth(key))).status_code == 402
    weekly = await client.patch(path, json={"limit_reset": "weekly"}, headers=auth(manager))
    assert weekly.json()["data"]["limit_remaining"] == 0  # all three were made this week
    kept = await client.patch(path, json={"concurrent_generations": 2}, headers=auth(manager))
    assert kept.json()["data"]["limit"] == 3 * PRICE  # a field left out is kept
    assert kept.json()["data"]["concurrent_generations"] == 2
    cleared = await client.patch(path, json={"limit": None}, headers=auth(manager))
    data = cleared.json()["data"]
    assert (data["limit"], data["limit_remaining"], data["concurrent_generations"]) == (
        None,
        None,
        2,
    )
    assert (await client.post("/api/v1/tryon", json=body, headers=auth(key))).status_code == 200
    listed = (await client.get("/api/v1/keys", headers=auth(manager))).json()["data"]
    assert {k["id"]: k["usage"] for k in listed}[key_id] == 4 * PRICE


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"limit": -1}, "limit"),
        ({"limit": MAX_CREDITS + 1}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit_reset": "yearly"}, "limit_reset"),
        ({"limit_reset": None}, "limit_reset"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"concurrent_generations": 1_000_001}, "concurrent_generations"),
        ({"concurrent_generations": "2"}, "concurrent_generations"),
        ({"burst": 3}, "burst"),
    ],
)
async def test_bad_limits_are_400_naming_the_field(
    client: Client, body: dict[str, Any], param: str
) -> None:
    manager, _ = await new_key(client, 0, scope="management")
    _, key_id = await limited_key(client, manager)
    for answer in (
        await client.post("/api/v1/keys", json=body, headers=auth(manager)),
        await client.patch(f"/api/v1/keys/{key_id}", json=body, headers=auth(manager)),
    ):
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert (error["type"], error["param"]) == ("invalid_request", param), error
    listed = (await client.get("/api/v1/keys", headers=auth(manager))).json()["data"]
    assert len(listed) == 2  # nothing made by a refused POST
    assert {k["limit"] for k in listed} == {None}


async def test_only_a_management_key_of_the_account_changes_a_key(client: Client) -> None:
    manager, account = await new_key(client, 0, scope="management")
    stranger, _ = await new_key(client, 0, scope="management")
    inference, _ = await new_key(client, 0, account=account)
    _, key_id = await limited_key(client, manager, limit=5)
    path = f"/api/v1/keys/{key_id}"
    other = await client.patch(path, json={"limit": 50}, headers=auth(stranger))
    assert other.status_code == 404 and other.json()["error"]["type"] == "not_found"
    unknown = await client.patch("/api/v1/keys/key_nope", json={}, headers=auth(manager))
    assert unknown.status_code == 404
    scoped = await client.patch(path, json={"limit": 50}, headers=auth(inference))
    assert scoped.status_code == 403 and scoped.json()["error"]["type"] == "insufficient_scope"
    assert (await client.patch(path, content=b"{", headers=auth(manager))).status_code == 400
    unchanged = await client.patch(path, json={}, headers=auth(manager))
    assert unchanged.status_code == 200 and unchanged.json()["data"]["limit"] == 5


async def test_a_free_model_runs_past_the_limit_and_a_limit_of_zero_stops_the_rest(
    make_app: Callable[..., Litestar],
    database_url: str,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    app = make_app(database_url, extra='[models."scripted/beta"]\ncredits = 0\n')
    async with AsyncTestClient(app=app) as client:
        manager, account = await new_key(client, 100, scope="management")
        key, _ = await limited_key(client, manager, limit=0, limit_reset="weekly")
        free = await client.post(
            "/api/v1/tryon", json=tryon_body(model="scripted/beta"), headers=auth(key)
        )
        assert free.status_code == 200, free.text
        paid = await client.post(
            "/api/v1/tryon", json=tryon_body(model="scripted/alpha"), headers=auth(key)
        )
        assert paid.status_code == 402
        assert paid.json()["error"]["metadata"]["limit_remaining"] == 0
        assert await money(client, account) == (100, 0, 100, 0)
