"""Two gateways (two replicas) on one PostgreSQL database and one Redis prefix: job events and
model health are the same on both (rate limits: tests/test_rate_limits.py); a Redis outage fails
nothing and events resume. Job events also reach the other replica without Redis, through
PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar import Litestar

from tests.helpers import auth, eventually, new_key
from tests.replicas import (
    Replica,
    has_status,
    messages,
    serve_replicas,
    submit,
)
from tests.tcp_proxy import TcpProxy
from tryon_core.errors import ProviderUnavailable
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep

pytestmark = pytest.mark.postgres

ALPHA, BETA = "scripted/alpha", "scripted/beta"


@pytest.fixture(params=["redis", "postgres"])
def broker(request: pytest.FixtureRequest) -> str:
    """What carries job events between the replicas: Redis (a ``[redis]`` table), or, with no
    Redis, PostgreSQL LISTEN/NOTIFY (an empty table)."""
    if request.param == "postgres":
        return ""
    table: str = request.getfixturevalue("redis_settings")
    return table


@pytest.fixture
def replicas(
    make_app: Callable[..., Litestar], postgres_database_url: str, redis_settings: str
) -> Callable[..., Any]:
    """``async with replicas(extra, redis_a=) as (a, b)``: two gateways on one database and one
    Redis prefix (``redis_a``: another address of that Redis for A, e.g. a proxy)."""

    def start(extra: str = "", *, redis_a: str | None = None) -> Any:
        settings_a = redis_settings
        if redis_a is not None:
            url = redis_settings.split('url = "')[1].split('"')[0]
            settings_a = redis_settings.replace(url, redis_a)
        tables = (f"{extra}\n{table}" for table in (settings_a, redis_settings))
        return serve_replicas(make_app, postgres_database_url, tables)

    return start


@pytest.fixture
def broker_replicas(
    make_app: Callable[..., Litestar], postgres_database_url: str, broker: str
) -> Callable[..., Any]:
    """``async with broker_replicas(extra) as (a, b)``: two gateways on one database, their
    job events carried by ``broker``."""

    def start(extra: str = "") -> Any:
        return serve_replicas(make_app, postgres_database_url, [f"{extra}\n{broker}"] * 2)

    return start


async def test_a_websocket_on_one_replica_sees_a_job_completed_through_the_other(
    broker_replicas: Callable[..., Any], scripted: ScriptedProvider, tryon_body: Any
) -> None:
    scripted.script(ALPHA, Sleep(1.0))
    async with broker_replicas() as (a, b):
        key, _ = await new_key(a.app)
        job_id = await submit(b, key, tryon_body(model=ALPHA))  # B runs it
        async with a.socket(job_id, key) as socket:
            received = await messages(socket)
            assert socket.close_code == 1000
        statuses = [m["job"]["status"] for m in received]
        assert statuses[0] in ("queued", "processing") and statuses[-1] == "completed"


async def test_a_websocket_on_one_replica_sees_a_cancel_made_through_the_other(
    broker_replicas: Callable[..., Any], scripted: ScriptedProvider, tryon_body: Any
) -> None:
    # each busy job long enough to keep its worker busy on a loaded machine (one Sleep each:
    # a job past the script answers at once, freeing its worker for the job that must wait)
    scripted.script(ALPHA, Sleep(5.0), Sleep(5.0))
    # no sweep meanwhile: without Redis, B's would run A's queued job
    async with broker_replicas("[jobs]\nworkers = 1\nsweep_interval_seconds = 60\n") as (a, b):
        key, _ = await new_key(a.app)
        # one job a worker (with Redis the shared queue feeds both; without, each runs its own)
        for replica in (a, b):
            busy = await submit(replica, key, tryon_body(model=ALPHA))
            await eventually(lambda job=busy: has_status(a, key, job, "processing"))
        second = await submit(a, key, tryon_body(model=ALPHA))  # waits behind both
        async with a.socket(second, key) as socket:
            assert json.loads(await socket.recv())["job"]["status"] == "queued"
            cancelled = await b.http.delete(f"/api/v1/tryon/{second}", headers=auth(key))
            assert cancelled.status_code == 200, cancelled.text
            received = await messages(socket)
        assert received[-1]["job"]["status"] == "failed"
        assert received[-1]["job"]["error"]["type"] == "cancelled"


def routing(failures: int, cooldown: float) -> str:
    return f"[routing]\nfailure_threshold = {failures}\ncooldown_seconds = {cooldown}\n"


@asynccontextmanager
async def cooled_down(
    replicas: Callable[..., Any],
    scripted: ScriptedProvider,
    tryon_body: Any,
    *,
    failures: int,
    cooldown: float,
) -> AsyncIterator[tuple[Replica, Replica, str, Any]]:
    """Two replicas, A and B; alpha failed ``failures`` times through A (beta served each
    request) and B sees it cooling down. Yields A, B, the key used and that request's body."""
    async with replicas(routing(failures, cooldown)) as (a, b):
        key, _ = await new_key(a.app)
        body = tryon_body(model=ALPHA, models=[BETA])
        scripted.script(ALPHA, *[ProviderUnavailable("down")] * failures)
        for _ in range(failures):
            answer = await a.http.post("/api/v1/tryon", json=body, headers=auth(key))
            assert answer.status_code == 200, answer.text
        await eventually(lambda: b.gateway.health.is_cooling(ALPHA))
        yield a, b, key, body


async def tries_of_alpha(scripted: ScriptedProvider, replica: Replica, key: str, body: Any) -> int:
    """How often a (successful) try-on through ``replica`` called alpha."""
    before = len(scripted.calls_to(ALPHA))
    answer = await replica.http.post("/api/v1/tryon", json=body, headers=auth(key))
    assert answer.status_code == 200, answer.text
    return len(scripted.calls_to(ALPHA)) - before


async def test_a_model_cooled_down_through_one_replica_is_skipped_by_the_other_until_it_succeeds(
    replicas: Callable[..., Any], scripted: ScriptedProvider, tryon_body: Any
) -> None:
    cooled = cooled_down(replicas, scripted, tryon_body, failures=2, cooldown=600)
    async with cooled as (a, b, key, with_fallback):
        assert await tries_of_alpha(scripted, b, key, with_fallback) == 0  # B skips it
        # the only candidate is tried even while cooling down: it succeeds, on both at once
        assert await tries_of_alpha(scripted, b, key, tryon_body(model=ALPHA)) == 1
        await eventually(lambda: not a.gateway.health.is_cooling(ALPHA))
        assert a.gateway.health.failures(ALPHA) == 0
        assert await tries_of_alpha(scripted, a, key, with_fallback) == 1


async def test_a_cool_down_ends_on_every_replica(
    replicas: Callable[..., Any], scripted: ScriptedProvider, tryon_body: Any
) -> None:
    cooled = cooled_down(replicas, scripted, tryon_body, failures=1, cooldown=1)
    async with cooled as (a, b, key, with_fallback):
        await eventually(lambda: not b.gateway.health.is_cooling(ALPHA))
        assert not a.gateway.health.is_cooling(ALPHA)
        assert await tries_of_alpha(scripted, b, key, with_fallback) == 1


async def test_a_replica_started_later_loads_the_cool_downs(
    replicas: Callable[..., Any], scripted: ScriptedProvider, tryon_body: Any
) -> None:
    async with (
        cooled_down(replicas, scripted, tryon_body, failures=1, cooldown=600),
        replicas(routing(1, 600)) as (c, d),  # two more, started after it
    ):
        for late in (c, d):
            assert late.gateway.health.is_cooling(ALPHA)
            assert late.gateway.health.failures(ALPHA) == 1


async def test_a_redis_outage_fails_no_request_and_events_resume_when_it_returns(
    replicas: Callable[..., Any],
    scripted: ScriptedProvider,
    tryon_body: Any,
    redis_settings: str,
) -> None:
    target = urlsplit(redis_settings.split('url = "')[1].split('"')[0])
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 6379))
    await proxy.start()
    path = target.path or "/0"
    try:
        async with replicas(redis_a=f"redis://127.0.0.1:{proxy.port}{path}") as (a, b):
            key, _ = await new_key(a.app, credits=100)
            scripted.script(ALPHA, Sleep(1.0))
            job_id = await submit(b, key, tryon_body(model=ALPHA))
            async with a.socket(job_id, key) as socket:
                first = json.loads(await socket.recv())["job"]["status"]
                assert first in ("queued", "processing")
                await proxy.cut()  # A loses Redis; B completes the job meanwhile
                await eventually(lambda: has_status(b, key, job_id, "completed"))

                scripted.script(ALPHA, ProviderUnavailable("down"))
                for body in (tryon_body(model=ALPHA, models=[BETA]), tryon_body()):
                    answer = await a.http.post("/api/v1/tryon", json=body, headers=auth(key))
                    assert answer.status_code == 200, answer.text  # health stays local
                accepted = await a.http.post(
                    "/api/v1/tryon", json={**tryon_body(), "mode": "async"}, headers=auth(key)
                )
                assert accepted.status_code in (202, 503), accepted.text
                assert (await a.http.get(f"/api/v1/tryon/{job_id}", headers=auth(key))).is_success

                await proxy.restore()
                received = await messages(socket)  # woken once A is subscribed again
            assert [m["job"]["status"] for m in received][-1] == "completed"
    finally:
        await proxy.close()
