"""Async jobs with a webhook_url: the final status arrives signed, with the job body."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar import Litestar, Request, post
from litestar.testing import AsyncTestClient

from tests.helpers import auth, new_key
from tests.jobs_helpers import job, submit, wait_for
from tryon_core.errors import ContentRefused
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep
from tryon_core.testing.server import serve_app_in_thread
from tryon_core.webhooks import verify


class Hooks:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.url = ""

    def app(self) -> Litestar:
        @post("/hook", status_code=204)
        async def hook(request: Request[Any, Any, Any]) -> None:
            body = await request.body()
            with self.lock:
                self.received.append(({k.lower(): v for k, v in request.headers.items()}, body))

        return Litestar([hook], logging_config=None, openapi_config=None)


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    receiver = Hooks()
    with serve_app_in_thread(receiver.app()) as url:
        receiver.url = url
        yield receiver


@pytest.fixture
def app(make_app: Callable[..., Litestar], database_url: str, hooks: Hooks) -> Litestar:
    host = hooks.url.removeprefix("http://")
    return make_app(
        database_url,
        extra=f'[fetch]\nallow_hosts = ["{host}"]\n[webhooks]\npoll_interval_seconds = 0.05\n'
        "[jobs]\nworkers = 1\n",
    )


async def delivered(hooks: Hooks, count: int) -> list[tuple[dict[str, str], bytes]]:
    for _ in range(400):
        with hooks.lock:
            if len(hooks.received) >= count:
                return list(hooks.received)
        await asyncio.sleep(0.025)
    raise AssertionError(f"{len(hooks.received)} webhook(s) arrived, expected {count}")


async def test_the_final_status_is_posted_signed_with_the_job_body(
    app: Litestar, hooks: Hooks, tryon_body: Any
) -> None:
    async with AsyncTestClient(app=app) as client:
        key, account = await new_key(client)
        manager, _ = await new_key(client, 0, scope="management", account=account)
        secret = (await client.get("/api/v1/webhooks/secret", headers=auth(manager))).json()[
            "secret"
        ]
        accepted = await submit(client, key, tryon_body(webhook_url=f"{hooks.url}/hook"))
        final = await wait_for(client, key, accepted["jobId"])
        ((headers, body),) = await delivered(hooks, 1)
        assert verify(secret, headers["tryon-signature"], body)
        assert headers["tryon-event"] == "job.completed"
        sent = json.loads(body)
        assert sent["id"] == accepted["jobId"]
        assert sent["status"] == "completed"
        assert {k: v for k, v in sent.items() if k != "images"} == {
            k: v for k, v in final.items() if k != "images"
        }
        assert [i["url"].split("?")[0] for i in sent["images"]] == [
            i["url"].split("?")[0] for i in final["images"]
        ]
        deliveries = await client.get(
            "/api/v1/webhooks/deliveries",
            params={"job_id": accepted["jobId"]},
            headers=auth(manager),
        )
        (record,) = deliveries.json()["data"]
        assert record["status"] == "delivered"
        assert record["id"] == headers["tryon-webhook-id"]


async def test_failed_and_cancelled_jobs_post_job_failed(
    app: Litestar, hooks: Hooks, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    async with AsyncTestClient(app=app) as client:
        key, _ = await new_key(client, credits=100)
        scripted.script("scripted/alpha", Sleep(0.5, then=ContentRefused("no")))
        hook = f"{hooks.url}/hook"
        failing = await submit(client, key, tryon_body(model="scripted/alpha", webhook_url=hook))
        await wait_for(client, key, failing["jobId"], "processing")
        queued = await submit(client, key, tryon_body(webhook_url=hook))
        assert (await job(client, key, queued["jobId"]))["status"] == "queued"
        await client.delete(f"/api/v1/tryon/{queued['jobId']}", headers=auth(key))
        await wait_for(client, key, failing["jobId"])
        received = await delivered(hooks, 2)
        by_job = {json.loads(body)["id"]: (headers, json.loads(body)) for headers, body in received}
        assert by_job[queued["jobId"]][0]["tryon-event"] == "job.failed"
        assert by_job[queued["jobId"]][1]["error"]["type"] == "cancelled"
        assert by_job[failing["jobId"]][0]["tryon-event"] == "job.failed"
        assert by_job[failing["jobId"]][1]["error"]["type"] == "content_policy_violation"
        await asyncio.sleep(0.3)
        assert len(hooks.received) == 2  # one delivery per job, never more
