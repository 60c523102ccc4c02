"""Webhook deliveries against a real receiver on 127.0.0.1: signed, retried, recorded, once.

The receiver runs in a thread of its own (``serve_app_in_thread``); its host:port is let through
the egress guard with ``[fetch] allow_hosts``. Gateways are built in the test's own event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar, Request, Response, post
from litestar.params import FromPath
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from tests.helpers import auth, new_key, own_database
from tryon_core import accounts
from tryon_core.config import Settings
from tryon_core.db.schema import webhook_deliveries
from tryon_core.gateway import Gateway, build_catalog
from tryon_core.ids import utcnow
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.server import serve_app_in_thread
from tryon_core.webhooks import deliver_due, enqueue, get_secret, verify

PAYLOAD = json.dumps({"id": "gen_test", "status": "completed"}).encode()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers ``POST /{name}`` from a per-name plan of statuses (200 once the plan runs out).

    ``/hang`` sleeps past any test timeout; ``/slow`` sleeps briefly; ``/moved`` redirects.
    """

    url: str = ""
    plans: dict[str, list[int]] = field(default_factory=dict)
    seen: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Litestar:
        @post("/{name:str}", status_code=200)
        async def hook(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
            body = await request.body()
            with self.lock:
                self.seen.append(Received(name, dict(request.headers), body))
                plan = self.plans.get(name, [])
                status = plan.pop(0) if plan else 200
            if name == "hang":
                await asyncio.sleep(1.5)
            if name == "slow":
                await asyncio.sleep(0.3)
            if name == "moved":
                return Response(b"", status_code=302, headers={"Location": f"{self.url}/ok"})
            if name == "down":
                status = 500
            return Response(b"thanks" * 2000, status_code=status)

        return Litestar([hook], logging_config=None)

    def to(self, name: str) -> list[Received]:
        with self.lock:
            return [r for r in self.seen if r.path == name]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    with serve_app_in_thread(state.app()) as url:
        state.url = url
        yield state


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(
    make_settings: Callable[..., Settings], database_url: str, receiver: Receiver
) -> AsyncIterator[GatewayFactory]:
    made: list[Gateway] = []
    host = receiver.url.removeprefix("http://")

    async def make(backoff: str = "[0.05, 0.05, 0.05]", send_timeout: float = 2.0) -> Gateway:
        extra = (
            f'[fetch]\nallow_hosts = ["{host}"]\n'
            f"[webhooks]\ntimeout = {send_timeout}\nbackoff_seconds = {backoff}\n"
        )
        settings = make_settings(database_url, extra)
        catalog = build_catalog(
            settings, extra_plugins=[ScriptedProvider()], load_entry_points=False
        )
        gateway = Gateway.create(settings, catalog)
        await gateway.start()
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.close()


async def new_account(gateway: Gateway) -> str:
    async with gateway.database.transaction() as conn:
        return await accounts.create_account(conn, name="hooks")


async def add(gateway: Gateway, account_id: str, url: str, *, event: str = "job.completed") -> str:
    async with gateway.database.transaction() as conn:
        return await enqueue(
            conn,
            account_id=account_id,
            generation_id="gen_test",
            url=url,
            payload=PAYLOAD,
            event=event,
        )


async def row(gateway: Gateway, delivery_id: str) -> Any:
    async with gateway.database.reading() as conn:
        query = select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
        return (await conn.execute(query)).one()


async def until_settled(gateway: Gateway, delivery_id: str, *, passes: int = 40) -> Any:
    for _ in range(passes):
        await deliver_due(gateway)
        found = await row(gateway, delivery_id)
        if found.status != "pending":
            return found
        await asyncio.sleep(0.06)
    raise AssertionError(f"delivery {delivery_id} still pending after {passes} passes")


async def test_a_delivery_is_signed_and_retried_until_it_is_answered(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    gateway = await make_gateway(backoff="[0.3, 0.3, 0.3]")
    account_id = await new_account(gateway)
    receiver.plans["flaky"] = [500, 503]
    delivery_id = await add(gateway, account_id, f"{receiver.url}/flaky")

    assert await deliver_due(gateway) == 1
    assert await deliver_due(gateway) == 0, "the retry waits for its backoff"
    first = await row(gateway, delivery_id)
    assert (first.status, first.attempts, first.last_status) == ("pending", 1, 500)
    assert first.last_error == "HTTP 500"

    settled = await until_settled(gateway, delivery_id)
    assert settled.status == "delivered"
    assert settled.attempts == 3 and settled.last_status == 200 and settled.last_error is None
    assert settled.delivered_at is not None and settled.next_attempt_at is None

    async with gateway.database.transaction() as conn:
        secret = (await get_secret(conn, account_id)).secret
    tries = receiver.to("flaky")
    assert len(tries) == 3
    for received in tries:
        assert received.body == PAYLOAD
        assert received.headers["content-type"] == "application/json"
        assert received.headers["tryon-webhook-id"] == delivery_id
        assert received.headers["tryon-event"] == "job.completed"
        assert received.headers["user-agent"] == "tryon-core"
        assert verify(secret, received.headers["tryon-signature"], received.body)
        assert not verify("whsec_other", received.headers["tryon-signature"], received.body)
    assert await deliver_due(gateway) == 0
    assert len(receiver.to("flaky")) == 3


async def test_a_delivery_is_given_up_after_one_try_plus_one_per_backoff(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    gateway = await make_gateway(backoff="[0.05, 0.05, 0.05, 0.05]")
    account_id = await new_account(gateway)
    delivery_id = await add(gateway, account_id, f"{receiver.url}/down", event="job.failed")
    settled = await until_settled(gateway, delivery_id)
    assert settled.status == "failed"
    assert settled.attempts == 5 and settled.last_status == 500
    assert settled.next_attempt_at is None and settled.delivered_at is None
    await asyncio.sleep(0.1)
    assert await deliver_due(gateway) == 0
    tries = receiver.to("down")
    assert len(tries) == 5
    assert {r.headers["tryon-event"] for r in tries} == {"job.failed"}


async def test_a_receiver_that_does_not_answer_in_time_is_a_failed_try(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    gateway = await make_gateway(backoff="[60]", send_timeout=0.3)
    account_id = await new_account(gateway)
    delivery_id = await add(gateway, account_id, f"{receiver.url}/hang")
    started = asyncio.get_running_loop().time()
    assert await deliver_due(gateway) == 1
    assert asyncio.get_running_loop().time() - started < 1.2
    found = await row(gateway, delivery_id)
    assert (found.status, found.attempts, found.last_status) == ("pending", 1, None)
    assert "no answer within 0.3 s" in found.last_error
    assert found.next_attempt_at is not None


async def test_a_redirect_is_a_failed_try_and_is_not_followed(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    gateway = await make_gateway(backoff="[60]")
    account_id = await new_account(gateway)
    delivery_id = await add(gateway, account_id, f"{receiver.url}/moved")
    assert await deliver_due(gateway) == 1
    found = await row(gateway, delivery_id)
    assert (found.status, found.last_status) == ("pending", 302)
    assert found.last_error == "HTTP 302 (redirects are not followed)"
    assert receiver.to("ok") == []


async def test_an_address_inside_is_refused_at_send_time_and_not_retried(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    gateway = await make_gateway()
    account_id = await new_account(gateway)
    port = int(receiver.url.rsplit(":", 1)[1])
    not_allowed = f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}/ok"
    delivery_id = await add(gateway, account_id, not_allowed)
    assert await deliver_due(gateway) == 1
    found = await row(gateway, delivery_id)
    assert (found.status, found.attempts, found.last_status) == ("failed", 1, None)
    assert "private, local or reserved address" in found.last_error


async def test_concurrent_passes_never_send_a_delivery_twice(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    """Two gateways on one database (two processes) and two passes of one gateway, at once."""
    first = await make_gateway()
    second = await make_gateway()
    account_id = await new_account(first)
    ids = {await add(first, account_id, f"{receiver.url}/slow") for _ in range(6)}
    counts = await asyncio.gather(
        deliver_due(first), deliver_due(second), deliver_due(first), deliver_due(second)
    )
    assert sum(counts) == 6
    sent = [r.headers["tryon-webhook-id"] for r in receiver.to("slow")]
    assert sorted(sent) == sorted(ids)
    for delivery_id in ids:
        found = await row(first, delivery_id)
        assert (found.status, found.attempts) == ("delivered", 1)


async def test_deliveries_survive_a_restart(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    before = await make_gateway()
    account_id = await new_account(before)
    waiting = await add(before, account_id, f"{receiver.url}/ok")
    interrupted = await add(before, account_id, f"{receiver.url}/ok")
    # A process claimed this one, then stopped before it recorded the outcome.
    async with before.database.transaction() as conn:
        await conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id == interrupted)
            .values(attempts=1, next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    await before.close()

    after = await make_gateway()
    assert await deliver_due(after) == 2
    assert (await row(after, waiting)).status == "delivered"
    resumed = await row(after, interrupted)
    assert (resumed.status, resumed.attempts) == ("delivered", 2)
    assert sorted(r.headers["tryon-webhook-id"] for r in receiver.to("ok")) == sorted(
        [waiting, interrupted]
    )


async def test_a_try_cut_short_on_the_last_attempt_is_given_up(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    gateway = await make_gateway(backoff="[0.05]")
    account_id = await new_account(gateway)
    delivery_id = await add(gateway, account_id, f"{receiver.url}/ok")
    async with gateway.database.transaction() as conn:
        await conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id == delivery_id)
            .values(attempts=2, next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    assert await deliver_due(gateway) == 0
    found = await row(gateway, delivery_id)
    assert (found.status, found.attempts) == ("failed", 2)
    assert found.last_error == "the last try was interrupted"
    assert receiver.to("ok") == []


async def test_the_secret_that_signs_is_the_current_one(
    make_gateway: GatewayFactory, receiver: Receiver
) -> None:
    from tryon_core.webhooks import rotate_secret

    gateway = await make_gateway()
    account_id = await new_account(gateway)
    async with gateway.database.transaction() as conn:
        old = (await get_secret(conn, account_id)).secret
        new = (await rotate_secret(conn, account_id)).secret
    await add(gateway, account_id, f"{receiver.url}/ok")
    assert await deliver_due(gateway) == 1
    (received,) = receiver.to("ok")
    assert verify(new, received.headers["tryon-signature"], received.body)
    assert not verify(old, received.headers["tryon-signature"], received.body)


def test_enqueue_refuses_an_unknown_event() -> None:
    async def attempt() -> None:
        await enqueue(
            None,  # type: ignore[arg-type]  # refused before any statement
            account_id="acct_x",
            generation_id="gen_x",
            url="https://example.com/",
            payload=b"{}",
            event="job.running",
        )

    with pytest.raises(ValueError, match="unknown webhook event"):
        asyncio.run(attempt())


# -- through the app: the background sender and the delivery list ------------------------------


@pytest.fixture
async def hooked_client(
    make_app: Callable[..., Litestar], database_url: str, receiver: Receiver
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    host = receiver.url.removeprefix("http://")
    extra = (
        f'[fetch]\nallow_hosts = ["{host}"]\n'
        "[webhooks]\npoll_interval_seconds = 0.05\nbackoff_seconds = [0.05]\n"
    )
    async with AsyncTestClient(app=make_app(database_url, extra)) as client:
        yield client


async def test_the_app_sends_due_deliveries_and_lists_them_per_account(
    hooked_client: AsyncTestClient[Litestar], receiver: Receiver
) -> None:
    key, account_id = await new_key(hooked_client, scope="management")
    other, _ = await new_key(hooked_client, scope="management")
    receiver.plans["flaky"] = [500]
    async with own_database(hooked_client) as database, database.transaction() as conn:
        delivery_id = await enqueue(
            conn,
            account_id=account_id,
            generation_id="gen_listed",
            url=f"{receiver.url}/flaky",
            payload=PAYLOAD,
            event="job.completed",
        )
        await enqueue(
            conn,
            account_id=account_id,
            generation_id="gen_elsewhere",
            url=f"{receiver.url}/ok",
            payload=PAYLOAD,
            event="job.failed",
        )

    listed: dict[str, Any] = {}
    for _ in range(100):
        answer = await hooked_client.get(
            "/api/v1/webhooks/deliveries", params={"job_id": "gen_listed"}, headers=auth(key)
        )
        assert answer.status_code == 200, answer.text
        listed = answer.json()
        if listed["data"] and listed["data"][0]["status"] == "delivered":
            break
        await asyncio.sleep(0.05)
    assert listed["object"] == "list"
    (delivery,) = listed["data"]
    assert delivery["object"] == "webhook_delivery"
    assert delivery["id"] == delivery_id and delivery["job_id"] == "gen_listed"
    assert delivery["url"] == f"{receiver.url}/flaky" and delivery["event"] == "job.completed"
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
        "delivered",
        2,
        200,
    )
    assert delivery["last_error"] is None and delivery["next_attempt_at"] is None
    assert delivery["delivered_at"] and delivery["created_at"]

    secret = (await hooked_client.get("/api/v1/webhooks/secret", headers=auth(key))).json()
    for received in receiver.to("flaky"):
        assert verify(secret["secret"], received.headers["tryon-signature"], received.body)

    everything = (await hooked_client.get("/api/v1/webhooks/deliveries", headers=auth(key))).json()
    assert [d["job_id"] for d in everything["data"]] == ["gen_elsewhere", "gen_listed"]
    mine_only = await hooked_client.get("/api/v1/webhooks/deliveries", headers=auth(other))
    assert mine_only.json() == {"data": [], "object": "list"}
    limited = await hooked_client.get(
        "/api/v1/webhooks/deliveries", params={"limit": 0}, headers=auth(key)
    )
    assert limited.status_code == 400
