"""tryon_core.connection_pool: the upstream client's pool, its assignment pass linear, still
bounds connections, reuses them, keeps the idle ones its limit allows and serves every call once."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpcore
import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from tryon_core.api import create_app
from tryon_core.asyncio_network import http_transport
from tryon_core.connection_pool import LinearPool, linear
from tryon_core.testing.server import serve_app


class Upstream:
    """An ASGI server that counts what it serves: calls by path, connections by the client's
    port, the most calls it held at once; each call waits for ``gate`` (open by default)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.paths: Counter[str] = Counter()
        self.ports: set[int] = set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.arrived = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.paths[scope["path"]] += 1
        self.ports.add(scope["client"][1])
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.arrived.set()
        try:
            await self.gate.wait()
        finally:
            self.in_flight -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})


@asynccontextmanager
async def upstreams(count: int) -> AsyncIterator[list[tuple[Upstream, str]]]:
    async with AsyncExitStack() as stack:
        served = []
        for _ in range(count):
            upstream = Upstream()
            served.append((upstream, await stack.enter_async_context(serve_app(upstream))))
        yield served


def client(max_connections: int, max_keepalive: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_keepalive)
    return httpx.AsyncClient(transport=http_transport(limits=limits), timeout=10)


def pool_of(http: httpx.AsyncClient) -> httpcore.AsyncConnectionPool:
    return http._transport._pool  # type: ignore[attr-defined,no-any-return]


async def settled(upstream: Upstream, in_flight: int) -> None:
    async with asyncio.timeout(5):
        while upstream.in_flight < in_flight:
            upstream.arrived.clear()
            await upstream.arrived.wait()


async def test_calls_queued_past_the_limit_each_go_once_on_at_most_that_many_connections() -> None:
    async with upstreams(1) as [(upstream, url)], client(4, 4) as http:
        assert type(pool_of(http)) is LinearPool
        upstream.gate.clear()
        calls = [asyncio.ensure_future(http.get(f"{url}/{n}")) for n in range(40)]
        await settled(upstream, 4)
        await asyncio.sleep(0.1)  # the other 36 wait in the pool, not at the server
        assert (upstream.in_flight, sum(upstream.paths.values())) == (4, 4)
        upstream.gate.set()
        answers = await asyncio.gather(*calls)
    assert [answer.text for answer in answers] == [f"/{n}" for n in range(40)]
    assert upstream.paths == Counter({f"/{n}": 1 for n in range(40)})
    assert upstream.most_in_flight == 4
    assert len(upstream.ports) == 4  # the same four connections carried all forty


async def test_idle_connections_past_the_keepalive_limit_are_closed_and_the_rest_reused() -> None:
    async with upstreams(1) as [(upstream, url)], client(10, 3) as http:
        upstream.gate.clear()
        burst = [asyncio.ensure_future(http.get(f"{url}/burst")) for _ in range(10)]
        await settled(upstream, 10)
        upstream.gate.set()
        await asyncio.gather(*burst)
        connections = pool_of(http).connections
        assert len(connections) == 3 and all(c.is_idle() for c in connections)
        ports_after_burst = set(upstream.ports)
        for _ in range(12):
            assert (await http.get(f"{url}/again")).status_code == 200
    assert len(ports_after_burst) == 10
    assert upstream.ports == ports_after_burst  # no new connection: the three kept were reused


async def test_a_full_pool_closes_another_origins_idle_connection_to_make_room() -> None:
    async with upstreams(2) as [(first, first_url), (second, second_url)], client(2, 2) as http:
        first.gate.clear()
        both = [asyncio.ensure_future(http.get(f"{first_url}/a")) for _ in range(2)]
        await settled(first, 2)
        first.gate.set()
        await asyncio.gather(*both)
        assert len(pool_of(http).connections) == 2  # both idle, both to the first upstream
        assert (await http.get(f"{second_url}/b")).text == "/b"
        assert len(pool_of(http).connections) == 2
        assert (await http.get(f"{first_url}/a")).text == "/a"
    assert len(first.ports) == 2 and len(second.ports) == 1


async def test_a_queued_call_cancelled_leaves_the_pool_serving_the_others() -> None:
    async with upstreams(1) as [(upstream, url)], client(1, 1) as http:
        upstream.gate.clear()
        held = asyncio.ensure_future(http.get(f"{url}/held"))
        await settled(upstream, 1)
        queued = asyncio.ensure_future(http.get(f"{url}/cancelled"))
        later = asyncio.ensure_future(http.get(f"{url}/later"))
        await asyncio.sleep(0.05)
        queued.cancel()
        upstream.gate.set()
        assert [(await held).text, (await later).text] == ["/held", "/later"]
        with pytest.raises(asyncio.CancelledError):
            await queued
    assert upstream.paths == Counter({"/held": 1, "/later": 1})
    assert len(upstream.ports) == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    max_connections=st.integers(1, 6),
    max_keepalive=st.integers(0, 6),
    calls=st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=30),
    seed=st.integers(0, 2**16),
)
def test_any_mix_of_origins_limits_and_cancellations_serves_each_call_once(
    max_connections: int, max_keepalive: int, calls: list[tuple[int, bool]], seed: int
) -> None:
    """Calls to three upstreams at once, started at random moments, some cancelled wherever
    they are: every call not cancelled gets its own answer, no upstream serves a call twice,
    the pool never holds more connections than its limit, no call is left on its list, and
    what it keeps idle at the end is within its keep-alive limit."""
    asyncio.run(_mixed(max_connections, max_keepalive, calls, random.Random(seed)))


async def _mixed(
    max_connections: int, max_keepalive: int, calls: list[tuple[int, bool]], rng: random.Random
) -> None:
    async with upstreams(3) as served, client(max_connections, max_keepalive) as http:
        pool = pool_of(http)
        most = 0

        async def call(index: int, target: int) -> str:
            nonlocal most
            await asyncio.sleep(rng.random() / 100)
            answer = await http.get(f"{served[target][1]}/{index}")
            most = max(most, len(pool.connections))
            return answer.text

        tasks = [asyncio.ensure_future(call(i, target)) for i, (target, _) in enumerate(calls)]
        await asyncio.sleep(rng.random() / 50)
        cancelled = {i for i, (_, cancel) in enumerate(calls) if cancel and not tasks[i].done()}
        for i in cancelled:
            tasks[i].cancel()
        answers = await asyncio.gather(*tasks, return_exceptions=True)
        for i, answer in enumerate(answers):
            assert i in cancelled or answer == f"/{i}", answer
        assert not pool._requests  # type: ignore[attr-defined]
        assert len([c for c in pool.connections if c.is_idle()]) <= max_keepalive
    assert most <= max_connections
    for target, (upstream, _) in enumerate(served):
        assert all(count == 1 for count in upstream.paths.values())
        mine = {f"/{i}" for i, (t, _) in enumerate(calls) if t == target and i not in cancelled}
        assert mine <= set(upstream.paths)


async def test_a_call_cancelled_at_any_moment_gives_its_place_back() -> None:
    """A cancellation can land in httpcore's own closing of an answer (an anyio shield does
    not hold off ``task.cancel()``): httpcore then kept the call on its list and its connection
    busy for good, about one cancellation in twenty-five here, until no place was left."""
    rng = random.Random(11)
    async with upstreams(1) as [(_, url)], client(1, 0) as http:
        pool = pool_of(http)
        for _ in range(250):
            call = asyncio.ensure_future(http.get(f"{url}/cancelled"))
            await asyncio.sleep(rng.random() / 200)
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
            assert not pool._requests  # type: ignore[attr-defined]
            async with asyncio.timeout(5):  # its one place is free again
                assert (await http.get(f"{url}/next")).text == "/next"


async def test_a_connection_no_call_holds_and_that_takes_none_gives_its_place_back() -> None:
    """A call cancelled after the pool made it a connection, before it began on it, leaves
    a connection that is neither idle nor closed; httpcore kept it (and its place) forever."""
    async with upstreams(1) as [(upstream, url)], client(1, 1) as http:
        pool = pool_of(http)
        assert (await http.get(f"{url}/first")).status_code == 200
        orphan = pool.create_connection(httpcore.URL(url).origin)
        pool._connections = [orphan]  # the only place, taken by one no call will use
        assert (await http.get(f"{url}/second")).text == "/second"
        assert orphan not in pool.connections
    assert upstream.paths == Counter({"/first": 1, "/second": 1})


def test_only_a_plain_http1_pool_is_made_linear() -> None:
    plain = httpcore.AsyncConnectionPool()
    linear(plain)
    assert type(plain) is LinearPool
    for other in (
        httpcore.AsyncConnectionPool(http2=True),  # its connections take several calls at once
        httpcore.AsyncHTTPProxy(proxy_url="http://127.0.0.1:9"),
    ):
        kind = type(other)
        linear(other)
        assert type(other) is kind
    assert type(http_transport(proxy="http://127.0.0.1:9")._pool) is httpcore.AsyncHTTPProxy  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", [3, 7])
async def test_the_gateway_holds_at_most_upstream_connections_per_process(
    make_settings: Any, scripted: Any, size: int
) -> None:
    """``[server] upstream_connections``: calls past it wait for a connection, and each of them
    is answered once one is free; the idle ones are kept for the next calls."""
    settings = make_settings()
    server = msgspec.structs.replace(settings.server, upstream_connections=size)
    app = create_app(
        msgspec.structs.replace(settings, server=server),
        extra_plugins=[scripted],
        load_entry_points=False,
    )
    async with upstreams(1) as [(upstream, url)], AsyncTestClient(app=app) as client:
        http = client.app.state.gateway.http
        upstream.gate.clear()
        calls = [asyncio.ensure_future(http.get(f"{url}/{n}")) for n in range(4 * size)]
        while upstream.in_flight < size:
            await asyncio.wait_for(upstream.arrived.wait(), 5)
            upstream.arrived.clear()
        await asyncio.sleep(0.2)  # the others wait for the pool, not for the upstream
        assert upstream.in_flight == size
        upstream.gate.set()
        answers = await asyncio.gather(*calls)
        assert [answer.text for answer in answers] == [f"/{n}" for n in range(4 * size)]
        assert upstream.most_in_flight == size
        assert len(upstream.ports) == size  # connections reused, not one per call
