"""Requests per minute, per key and per account: counted before the body is read, refused with
429, the X-RateLimit-* headers and Retry-After, and never charged. With Redis, every gateway
process of the deployment counts into the same windows."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.demo_helpers import ORIGIN, demo, new_session
from tests.helpers import auth, new_key
from tests.served import Gateway, configured, new_account, stop_process
from tests.tcp_proxy import TcpProxy

PER_KEY = "[limits]\nrequests_per_minute = 3\n"
PER_ACCOUNT = "[limits.account]\nrequests_per_minute = 2\n"


def limited(answer: httpx.Response) -> tuple[str, str, str]:
    return (
        answer.headers["X-RateLimit-Limit"],
        answer.headers["X-RateLimit-Remaining"],
        answer.headers["X-RateLimit-Scope"],
    )


def assert_refused(answer: httpx.Response, *, scope: str, maximum: int) -> None:
    assert answer.status_code == 429, answer.text
    error = answer.json()["error"]
    assert error["type"] == "too_many_requests"
    assert error["metadata"] == {
        "limit": "requests_per_minute",
        "scope": scope,
        "maximum": maximum,
    }
    assert 1 <= int(answer.headers["Retry-After"]) <= 60
    assert limited(answer) == (str(maximum), "0", scope)
    assert time.time() < int(answer.headers["X-RateLimit-Reset"]) <= time.time() + 61


async def balance(client: AsyncTestClient[Litestar], key: str) -> tuple[int, int]:
    answer = (await client.get("/api/v1/credits", headers=auth(key))).json()
    return answer["balance"], answer["reserved"]


async def test_a_key_starts_its_requests_per_minute_and_the_next_is_refused_for_nothing(
    make_app: Callable[..., Litestar], tryon_body: Callable[..., dict[str, Any]]
) -> None:
    async with AsyncTestClient(app=make_app(extra=PER_KEY)) as client:
        key, _ = await new_key(client, credits=100)
        other, _ = await new_key(client, credits=100)
        seen = []
        for _ in range(3):
            answer = await client.post("/api/v1/tryon", json=tryon_body(), headers=auth(key))
            assert answer.status_code == 200, answer.text
            seen.append(limited(answer))
        assert seen == [("3", "2", "key"), ("3", "1", "key"), ("3", "0", "key")]
        before = await balance(client, key)

        assert_refused(
            await client.post("/api/v1/tryon", json=tryon_body(), headers=auth(key)),
            scope="key",
            maximum=3,
        )
        chat = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
        assert_refused(
            await client.post("/api/v1/chat/completions", json=chat, headers=auth(key)),
            scope="key",
            maximum=3,
        )
        assert await balance(client, key) == before  # nothing reserved, nothing charged
        # reading is not limited, and another key has its own window
        assert (await client.get("/api/v1/credits", headers=auth(key))).status_code == 200
        assert "X-RateLimit-Limit" not in (await client.get("/api/v1/models")).headers
        answer = await client.post("/api/v1/tryon", json=tryon_body(), headers=auth(other))
        assert answer.status_code == 200 and limited(answer) == ("3", "2", "key")


async def test_a_request_counts_before_its_body_is_read_even_when_the_body_is_bad(
    make_app: Callable[..., Litestar], tryon_body: Callable[..., dict[str, Any]]
) -> None:
    async with AsyncTestClient(app=make_app(extra=PER_KEY)) as client:
        key, _ = await new_key(client, credits=100)
        for body in (b"{", b'{"person_images": 7}', b"[]"):
            answer = await client.post(
                "/api/v1/tryon",
                content=body,
                headers={**auth(key), "Content-Type": "application/json"},
            )
            assert answer.status_code == 400 and "X-RateLimit-Remaining" in answer.headers
        assert_refused(
            await client.post("/api/v1/tryon", json=tryon_body(), headers=auth(key)),
            scope="key",
            maximum=3,
        )


async def test_an_accounts_limit_counts_every_key_of_the_account_together(
    make_app: Callable[..., Litestar], tryon_body: Callable[..., dict[str, Any]]
) -> None:
    async with AsyncTestClient(app=make_app(extra=PER_KEY + PER_ACCOUNT)) as client:
        first, account = await new_key(client, credits=100)
        second, _ = await new_key(client, credits=0, account=account)
        stranger, _ = await new_key(client, credits=100)
        answer = await client.post("/api/v1/tryon", json=tryon_body(), headers=auth(first))
        assert answer.status_code == 200
        assert limited(answer) == ("2", "1", "account")  # the tighter of the two limits
        answer = await client.post("/api/v1/tryon", json=tryon_body(), headers=auth(second))
        assert answer.status_code == 200 and limited(answer) == ("2", "0", "account")
        before = await balance(client, first)
        for key in (first, second):
            assert_refused(
                await client.post("/api/v1/tryon", json=tryon_body(), headers=auth(key)),
                scope="account",
                maximum=2,
            )
        assert await balance(client, first) == before
        # the refusals used none of the first key's own minute: 1 of its 3 is gone
        answer = await client.post("/api/v1/tryon", json=tryon_body(), headers=auth(stranger))
        assert answer.status_code == 200


async def test_a_demo_session_counts_like_a_key_and_against_its_account(
    make_app: Callable[..., Litestar], tryon_body: Callable[..., dict[str, Any]]
) -> None:
    async with AsyncTestClient(app=make_app(extra=PER_KEY)) as client:
        manager, _ = await new_key(client, credits=100, scope="management")
        created = await new_session(client, manager, max_credits=50)
        token = created["token"]
        statuses = []
        for _ in range(4):
            answer = await client.post(
                "/api/v1/tryon", json=tryon_body(), headers=demo(token, ORIGIN)
            )
            statuses.append(answer.status_code)
        assert statuses == [200, 200, 200, 429]


async def test_without_limits_configured_nothing_is_counted(
    make_app: Callable[..., Litestar], tryon_body: Callable[..., dict[str, Any]]
) -> None:
    async with AsyncTestClient(app=make_app()) as client:
        key, _ = await new_key(client, credits=100)
        for _ in range(5):
            answer = await client.post("/api/v1/tryon", json=tryon_body(), headers=auth(key))
            assert answer.status_code == 200
            assert "X-RateLimit-Limit" not in answer.headers


def served_pair(tmp_path: Path, redis_url: str, prefix: str) -> list[Gateway]:
    """Two ``tryon serve`` processes (not started) of one deployment: one database, one file
    store and signing secret, one Redis, a limit of 3 requests per minute per key."""
    shared = f"""
[redis]
url = "{redis_url}"
prefix = "{prefix}"
[limits]
requests_per_minute = 3
"""
    return [
        configured(
            tmp_path,
            f"sqlite+aiosqlite:///{tmp_path}/tryon.db",
            shared,
            files=tmp_path / "files",
            storage='signing_secret = "one-secret-for-both-processes-of-this-test"',
            name=name,
        )
        for name in ("a", "b")
    ]


async def post_empty(http: httpx.AsyncClient, gateway: Gateway, key: str) -> httpx.Response:
    """A try-on with an empty JSON body: counted, then refused (400) for the body."""
    return await http.post(
        f"{gateway.url}/api/v1/tryon",
        content=b"{}",
        headers={**auth(key), "Content-Type": "application/json"},
    )


async def test_two_gateway_processes_sharing_redis_count_into_one_window(
    tmp_path: Path, redis_settings: str
) -> None:
    """3 requests a minute for the key in all, not 3 on each process; and with Redis gone, a
    request is refused (503, Retry-After) rather than let through uncounted."""
    url = redis_settings.split('url = "')[1].split('"')[0]
    prefix = redis_settings.split('prefix = "')[1].split('"')[0]
    target = urlsplit(url)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 6379))
    await proxy.start()
    pair = served_pair(tmp_path, f"redis://127.0.0.1:{proxy.port}{target.path or '/0'}", prefix)
    key, _ = await new_account(f"sqlite+aiosqlite:///{tmp_path}/tryon.db", credits=10)
    try:
        for gateway in pair:
            await asyncio.to_thread(gateway.start)
        async with httpx.AsyncClient(timeout=30) as http:
            answers = [await post_empty(http, pair[i % 2], key) for i in range(6)]
            # the body is refused (400) after the request was counted; the 4th on are refused
            assert [a.status_code for a in answers] == [400, 400, 400, 429, 429, 429]
            assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"] + [
                "0"
            ] * 3
            assert answers[4].json()["error"]["metadata"]["scope"] == "key"

            await proxy.cut()
            other, _ = await new_account(f"sqlite+aiosqlite:///{tmp_path}/tryon.db", credits=10)
            down = await post_empty(http, pair[0], other)
            assert down.status_code == 503, down.text
            assert down.json()["error"]["type"] == "service_unavailable"
            assert "Retry-After" in down.headers
    finally:
        for gateway in pair:
            stop_process(gateway.process)
        await proxy.close()


def test_the_headers_hook_runs_on_the_event_loop(make_app: Callable[..., Litestar]) -> None:
    # Litestar hands a plain-function hook to a worker thread, for every message of every answer
    hooks = make_app().before_send
    assert hooks
    assert all(inspect.iscoroutinefunction(hook) for hook in hooks)
