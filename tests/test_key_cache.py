"""``[keys] cache_seconds``: an API key that authenticated lately is taken as it was read.

What the database sees (the key's read, counted on the engine) and what a client sees when
the key, its limits or its balance change meanwhile: through this process (the API) at once;
by another process (here: plain SQL on the database, as ``tryon keys revoke`` or another
replica would write it) within ``cache_seconds``, and even then a revoked key starts nothing
and is charged nothing, and a refusal is never made on a stale balance. Once on SQLite and
once on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import event, update

from tests.helpers import auth, key_id, new_key, own_database
from tests.jobs_helpers import money
from tryon_core import billing
from tryon_core.accounts import Principal, Seen
from tryon_core.config import parse_settings
from tryon_core.db.schema import api_keys
from tryon_core.errors import ConfigError
from tryon_core.ids import utcnow
from tryon_core.key_cache import KeyCache, keys_changed
from tryon_core.testing import ScriptedProvider

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def cached(make_app: Callable[..., Litestar], database_url: str) -> AsyncIterator[Client]:
    """The gateway with keys remembered for 30 s: longer than any test here runs."""
    app = make_app(database_url, "[keys]\ncache_seconds = 30")
    async with AsyncTestClient(app=app) as client:
        yield client


@contextmanager
def key_reads(client: Client) -> Iterator[list[str]]:
    """The statements that read a key for authentication, as the app's engine runs them."""
    engine = client.app.state.gateway.database.engine.sync_engine
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM api_keys JOIN accounts" in statement and "api_keys.hash" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def revoke_elsewhere(client: Client, account_id: str) -> None:
    """Revoke the account's keys as another process would: in the database only."""
    async with own_database(client) as database, database.transaction() as conn:
        await conn.execute(
            update(api_keys).where(api_keys.c.account_id == account_id).values(revoked_at=utcnow())
        )


async def spend_elsewhere(client: Client, account_id: str, credits: int) -> None:
    """Take credits off the balance as another replica's charge would (ledger and balance)."""
    async with own_database(client) as database, database.transaction() as conn:
        await billing.grant(conn, account_id, -credits, note="spent elsewhere")


async def test_a_key_is_read_once_within_cache_seconds(cached: Client) -> None:
    key, _ = await new_key(cached, credits=10)
    with key_reads(cached) as reads:
        for _ in range(5):
            assert (await cached.get("/api/v1/credits", headers=auth(key))).status_code == 200
    assert len(reads) == 1


async def test_each_request_reads_its_key_when_the_cache_is_off(
    make_app: Callable[..., Litestar], database_url: str
) -> None:
    async with AsyncTestClient(app=make_app(database_url, "[keys]\ncache_seconds = 0")) as client:
        key, _ = await new_key(client, credits=10)
        with key_reads(client) as reads:
            for _ in range(3):
                assert (await client.get("/api/v1/credits", headers=auth(key))).status_code == 200
    assert len(reads) == 3


async def test_a_remembered_key_is_read_again_after_cache_seconds(
    make_app: Callable[..., Litestar], database_url: str
) -> None:
    app = make_app(database_url, "[keys]\ncache_seconds = 0.2")
    async with AsyncTestClient(app=app) as client:
        key, account_id = await new_key(client, credits=10)
        assert (await client.get("/api/v1/credits", headers=auth(key))).status_code == 200
        await revoke_elsewhere(client, account_id)
        await asyncio.sleep(0.3)  # past cache_seconds: the revocation is read
        gone = await client.get("/api/v1/credits", headers=auth(key))
    assert gone.status_code == 401


async def test_unknown_keys_are_read_every_time(cached: Client) -> None:
    with key_reads(cached) as reads:
        for _ in range(3):
            answer = await cached.get("/api/v1/credits", headers=auth("tryon_" + "x" * 40))
            assert answer.status_code == 401
    assert len(reads) == 3


async def test_a_key_revoked_through_this_process_is_refused_at_once(cached: Client) -> None:
    key, account_id = await new_key(cached, credits=10)
    manager, _ = await new_key(cached, credits=0, scope="management", account=account_id)
    assert (await cached.get("/api/v1/credits", headers=auth(key))).status_code == 200
    own = await key_id(cached, key)
    removed = await cached.delete(f"/api/v1/keys/{own}", headers=auth(manager))
    assert removed.status_code == 200
    refused = await cached.get("/api/v1/credits", headers=auth(key))
    assert refused.status_code == 401


async def test_limits_changed_through_this_process_apply_at_once(
    cached: Client, tryon_body: Callable[..., dict[str, Any]]
) -> None:
    key, account_id = await new_key(cached, credits=100)
    manager, _ = await new_key(cached, credits=0, scope="management", account=account_id)
    own = await key_id(cached, key)
    body = tryon_body(model="scripted/alpha")
    assert (await cached.post("/api/v1/tryon", json=body, headers=auth(key))).status_code == 200
    changed = await cached.patch(
        f"/api/v1/keys/{own}", json={"requests_per_minute": 1}, headers=auth(manager)
    )
    assert changed.status_code == 200, changed.text
    # the key's own limit as it now is, not as remembered (none): one more, then 429
    assert (await cached.post("/api/v1/tryon", json=body, headers=auth(key))).status_code == 200
    limited = await cached.post("/api/v1/tryon", json=body, headers=auth(key))
    assert limited.status_code == 429, limited.text


async def test_a_key_revoked_elsewhere_starts_nothing_and_is_charged_nothing(
    cached: Client, scripted: ScriptedProvider, tryon_body: Callable[..., dict[str, Any]]
) -> None:
    key, account_id = await new_key(cached, credits=10)
    assert (await cached.get("/api/v1/credits", headers=auth(key))).status_code == 200
    await revoke_elsewhere(cached, account_id)
    # within cache_seconds the key still reads (documented) ...
    assert (await cached.get("/api/v1/credits", headers=auth(key))).status_code == 200
    # ... but a generation is refused at its reservation: no model called, nothing held
    for body in (tryon_body(model="scripted/alpha"), tryon_body(model="scripted/alpha", n=2)):
        refused = await cached.post("/api/v1/tryon", json=body, headers=auth(key))
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["type"] == "key_revoked"
    queued = await cached.post(
        "/api/v1/tryon", json=tryon_body(model="scripted/alpha", mode="async"), headers=auth(key)
    )
    assert queued.status_code == 401 and queued.json()["error"]["type"] == "key_revoked"
    assert scripted.calls == []
    assert await money(cached, account_id) == (10, 0, 10, 0)


async def test_a_top_up_elsewhere_counts_at_once(
    cached: Client, tryon_body: Callable[..., dict[str, Any]]
) -> None:
    key, account_id = await new_key(cached, credits=0)
    body = tryon_body(model="scripted/alpha")
    assert (await cached.post("/api/v1/tryon", json=body, headers=auth(key))).status_code == 402
    async with own_database(cached) as database, database.transaction() as conn:
        await billing.grant(conn, account_id, 3, note="top-up elsewhere")
    served = await cached.post("/api/v1/tryon", json=body, headers=auth(key))
    assert served.status_code == 200, served.text
    assert await money(cached, account_id) == (0, 0, 0, 0)


async def test_a_refusal_after_spending_elsewhere_is_the_one_a_fresh_read_gives(
    cached: Client, tryon_body: Callable[..., dict[str, Any]]
) -> None:
    """Remembered with 10 credits, the account has less left. Two images of alpha (3 each) or
    beta (2 each): the reservation holds the dearest, 6; the early check asks for the cheapest,
    4. Each refusal is the one the request would get without the cache."""
    key, account_id = await new_key(cached, credits=10)
    assert (await cached.get("/api/v1/credits", headers=auth(key))).status_code == 200
    body = tryon_body(models=["scripted/alpha", "scripted/beta"], n=2)
    await spend_elsewhere(cached, account_id, 6)  # 4 left: the cheapest, not the reservation
    held = await cached.post("/api/v1/tryon", json=body, headers=auth(key))
    assert held.status_code == 402
    assert held.json()["error"]["metadata"] == {"required": 6, "balance": 4}
    await spend_elsewhere(cached, account_id, 1)  # 3 left: not even the cheapest
    early = await cached.post("/api/v1/tryon", json=body, headers=auth(key))
    assert early.status_code == 402
    assert early.json()["error"]["metadata"] == {"required": 4, "balance": 3}
    assert await money(cached, account_id) == (3, 0, 3, 0)


@pytest.mark.parametrize("value", ["-1", "61", '"2"'])
def test_cache_seconds_out_of_range_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match=r"keys\.cache_seconds"):
        parse_settings(f"[keys]\ncache_seconds = {value}\n")


async def test_reads_in_flight_during_a_revocation_do_not_bring_the_key_back(
    cached: Client,
) -> None:
    """Requests authenticating while the key is revoked through the API may pass or not, but
    once the revocation has answered, every request is refused. Several rounds, a new key
    each: the reads land at different moments (the exact interleaving a test cannot choose
    here is pinned below, on the cache itself)."""
    _, account_id = await new_key(cached, credits=10)
    manager, _ = await new_key(cached, credits=0, scope="management", account=account_id)
    for _ in range(5):
        key, _ = await new_key(cached, credits=0, account=account_id)
        assert (await cached.get("/api/v1/credits", headers=auth(key))).status_code == 200
        own = await key_id(cached, key)
        reads = [cached.get("/api/v1/credits", headers=auth(key)) for _ in range(20)]
        revocation = cached.delete(f"/api/v1/keys/{own}", headers=auth(manager))
        answers = await asyncio.gather(*reads[:10], revocation, *reads[10:])
        assert answers[10].status_code == 200
        assert {a.status_code for a in answers} <= {200, 401}
        after = await asyncio.gather(
            *(cached.get("/api/v1/credits", headers=auth(key)) for _ in range(5))
        )
        assert [a.status_code for a in after] == [401] * 5


def _principal(key_id: str = "key_1") -> Principal:
    return Principal(key_id=key_id, account_id="acct_1", seen=Seen(balance=10))


def test_a_read_that_began_before_a_key_changed_is_not_remembered() -> None:
    cache = KeyCache(30)
    began = cache.mark()
    keys_changed()  # e.g. a revocation, between the read's start and its end
    cache.keep("digest", _principal(), read_since=began)
    assert cache.get("digest") is None
    cache.keep("digest", _principal(), read_since=cache.mark())
    remembered = cache.get("digest")
    assert remembered is not None and remembered.seen is not None and remembered.seen.remembered


def test_a_change_drops_what_every_cache_remembers() -> None:
    caches = [KeyCache(30), KeyCache(30)]
    for cache in caches:
        cache.keep("digest", _principal(), read_since=cache.mark())
    keys_changed()
    assert [cache.get("digest") for cache in caches] == [None, None]


def test_at_most_size_keys_are_remembered_the_oldest_going_first() -> None:
    cache = KeyCache(30, size=2)
    for n in range(3):
        cache.keep(f"digest-{n}", _principal(f"key_{n}"), read_since=cache.mark())
    assert cache.get("digest-0") is None
    assert [cache.get(f"digest-{n}") is not None for n in (1, 2)] == [True, True]
