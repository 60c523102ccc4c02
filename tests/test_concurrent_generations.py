"""Concurrent generations per key and per account, through HTTP, on SQLite and PostgreSQL.

A generation is active from its reservation to its settlement; queued and running jobs count.
Past the most allowed, a request is ``429 too_many_requests`` with ``Retry-After``, and nothing
is charged or kept; once one ends, the next passes. Jobs are held open without timing: one
worker, busy with a job whose upstream never answers, leaves the next jobs queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.demo_helpers import demo, new_session
from tests.helpers import auth, new_key
from tests.jobs_helpers import job, money, submit, wait_for, wait_for_attempt
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Hang

Client = AsyncTestClient[Litestar]
PRICE = 3  # scripted/alpha, one image
ONE_WORKER = "[jobs]\nworkers = 1\nshutdown_grace_seconds = 0\n"


@asynccontextmanager
async def gateway(
    make_app: Callable[..., Litestar], database_url: str, limits: str
) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=make_app(database_url, extra=ONE_WORKER + limits)) as client:
        yield client


async def busy_worker(client: Client, scripted: ScriptedProvider, body: dict[str, Any]) -> None:
    """Occupy the one worker with another account's job that never ends."""
    scripted.script("scripted/alpha", Hang())
    key, _ = await new_key(client, 100)
    accepted = await submit(client, key, body)
    await wait_for_attempt(client, key, accepted["jobId"])


def assert_too_many(response: Any, scope: str, maximum: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == "2"
    error = response.json()["error"]
    assert error["type"] == "too_many_requests"
    assert error["metadata"] == {
        "limit": "concurrent_generations",
        "scope": scope,
        "maximum": maximum,
    }


async def test_a_key_runs_at_most_its_limit_at_once(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    async with gateway(make_app, database_url, "[limits]\nconcurrent_generations = 2\n") as client:
        body = tryon_body(model="scripted/alpha")
        await busy_worker(client, scripted, body)
        key, account = await new_key(client, 100)
        queued = [await submit(client, key, body) for _ in range(2)]
        assert {(await job(client, key, q["jobId"]))["status"] for q in queued} == {"queued"}
        assert await money(client, account) == (94, 6, 94, 6)
        assert_too_many(await client.post("/api/v1/tryon", json=body, headers=auth(key)), "key", 2)
        assert_too_many(
            await client.post("/api/v1/tryon", json={**body, "mode": "async"}, headers=auth(key)),
            "key",
            2,
        )
        assert await money(client, account) == (94, 6, 94, 6)  # nothing charged, nothing kept
        listed = (await client.get("/api/v1/tryon", headers=auth(key))).json()["data"]
        assert len(listed) == 2
        cancelled = await client.delete(f"/api/v1/tryon/{queued[0]['jobId']}", headers=auth(key))
        assert cancelled.json()["status"] == "failed"
        done = await client.post("/api/v1/tryon", json=body, headers=auth(key))
        assert done.status_code == 200, done.text
        assert await money(client, account) == (94, 3, 94, 3)  # one queued job holds its part
        await submit(client, key, body)  # two queued again
        assert_too_many(await client.post("/api/v1/tryon", json=body, headers=auth(key)), "key", 2)
        assert await money(client, account) == (91, 6, 91, 6)


async def test_a_key_of_its_own_overrides_the_default(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    async with gateway(make_app, database_url, "[limits]\nconcurrent_generations = 5\n") as client:
        body = tryon_body(model="scripted/alpha")
        await busy_worker(client, scripted, body)
        manager, account = await new_key(client, 100, scope="management")
        created = await client.post(
            "/api/v1/keys", json={"concurrent_generations": 1}, headers=auth(manager)
        )
        key = created.json()["key"]
        assert created.json()["data"]["concurrent_generations"] == 1
        first = await submit(client, key, body)
        assert_too_many(await client.post("/api/v1/tryon", json=body, headers=auth(key)), "key", 1)
        raised = await client.patch(
            f"/api/v1/keys/{created.json()['data']['id']}",
            json={"concurrent_generations": None},
            headers=auth(manager),
        )
        assert raised.json()["data"]["concurrent_generations"] is None
        again = await client.post("/api/v1/tryon", json=body, headers=auth(key))
        assert again.status_code == 200, again.text  # the [limits] default again: 5
        await client.delete(f"/api/v1/tryon/{first['jobId']}", headers=auth(key))
        assert await money(client, account) == (97, 0, 97, 0)


async def test_an_account_limit_holds_across_its_keys(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    limits = "[limits.account]\nconcurrent_generations = 1\n"
    async with gateway(make_app, database_url, limits) as client:
        body = tryon_body(model="scripted/alpha")
        await busy_worker(client, scripted, body)
        first, account = await new_key(client, 100)
        second, _ = await new_key(client, 0, account=account)
        other, _ = await new_key(client, 100)
        queued = await submit(client, first, body)
        refused = await client.post("/api/v1/tryon", json=body, headers=auth(second))
        assert_too_many(refused, "account", 1)
        assert (
            await client.post("/api/v1/tryon", json=body, headers=auth(other))
        ).status_code == 200
        assert await money(client, account) == (97, 3, 97, 3)
        await client.delete(f"/api/v1/tryon/{queued['jobId']}", headers=auth(first))
        await wait_for(client, first, queued["jobId"])
        done = await client.post("/api/v1/tryon", json=body, headers=auth(second))
        assert done.status_code == 200, done.text
        assert await money(client, account) == (97, 0, 97, 0)


async def test_demo_sessions_count_among_their_accounts_generations(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    """A demo session has no key: only the account's limit applies to it (a key's does not)."""
    limits = "[limits]\nconcurrent_generations = 1\n[limits.account]\nconcurrent_generations = 2\n"
    async with gateway(make_app, database_url, limits) as client:
        body = tryon_body(model="scripted/alpha")
        await busy_worker(client, scripted, body)
        manager, account = await new_key(client, 100, scope="management")
        created = await new_session(client, manager, max_credits=50)
        token = created["token"]
        first = await client.post(
            "/api/v1/tryon", json={**body, "mode": "async"}, headers=demo(token)
        )
        assert first.status_code == 202, first.text
        second = await client.post(
            "/api/v1/tryon", json={**body, "mode": "async"}, headers=demo(token)
        )
        assert second.status_code == 202, second.text  # one key may run 1; a session has none
        third = await client.post("/api/v1/tryon", json=body, headers=demo(token))
        assert_too_many(third, "account", 2)
        assert await money(client, account) == (94, 6, 94, 6)
        (session,) = (await client.get("/api/v1/demo-sessions", headers=auth(manager))).json()[
            "data"
        ]
        assert session["reserved"] == 6  # the refused request held nothing of the cap either


async def test_racing_submissions_take_exactly_the_places_left(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Callable[..., dict[str, Any]],
) -> None:
    """Twelve submissions at once against a key that may have three active, free jobs
    included (a model priced 0 counts like any other): exactly three are accepted."""
    limits = '[limits]\nconcurrent_generations = 3\n[models."scripted/beta"]\ncredits = 0\n'
    async with gateway(make_app, database_url, limits) as client:
        await busy_worker(client, scripted, tryon_body(model="scripted/alpha"))
        key, account = await new_key(client, 100)
        free = tryon_body(model="scripted/beta")
        accepted = await submit(client, key, free)
        answers = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/tryon",
                    json={**tryon_body(model=model), "mode": "async"},
                    headers=auth(key),
                )
                for model in ["scripted/alpha", "scripted/beta"] * 6
            )
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [202] * 2 + [429] * 10, [a.text for a in answers]
        for refused in (a for a in answers if a.status_code == 429):
            assert_too_many(refused, "key", 3)
        charged = sum(
            PRICE for a in answers if a.status_code == 202 and "alpha" in a.request.content.decode()
        )
        assert await money(client, account) == (100 - charged, charged, 100 - charged, charged)
        await client.delete(f"/api/v1/tryon/{accepted['jobId']}", headers=auth(key))
        again = await client.post(
            "/api/v1/tryon", json={**free, "mode": "async"}, headers=auth(key)
        )
        assert again.status_code == 202, again.text
