"""Idempotency-Key on POST /api/v1/tryon: sync, async (the same job), multipart, and a burst."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import SAMPLES, auth, live_server, new_key
from tests.jobs_helpers import money, wait_for
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep

Client = AsyncTestClient[Litestar]
ENDPOINT = "/api/v1/tryon"


def idem(key: str, idempotency_key: str) -> dict[str, str]:
    return auth(key) | {"Idempotency-Key": idempotency_key}


async def test_a_sync_retry_replays_the_result_and_charges_once(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    body = tryon_body(model="scripted/alpha")
    first = await client.post(ENDPOINT, json=body, headers=idem(key, "k"))
    second = await client.post(ENDPOINT, json=body, headers=idem(key, "k"))
    assert first.status_code == second.status_code == 200, first.text
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert len(scripted.calls) == 1
    assert await money(client, account) == (7, 0, 7, 0)
    other = await client.post(
        ENDPOINT, json=tryon_body(model="scripted/gamma"), headers=idem(key, "k")
    )
    assert other.status_code == 422 and other.json()["error"]["type"] == "idempotency_key_reused"


async def test_an_async_retry_returns_the_same_job(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    body = tryon_body(model="scripted/alpha", mode="async")
    first = await client.post(ENDPOINT, json=body, headers=idem(key, "job"))
    second = await client.post(ENDPOINT, json=body, headers=idem(key, "job"))
    assert first.status_code == second.status_code == 202, first.text
    assert second.json()["jobId"] == first.json()["jobId"]
    assert second.content == first.content
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    await wait_for(client, key, first.json()["jobId"])
    listed = (await client.get(ENDPOINT, headers=auth(key))).json()["data"]
    assert len(listed) == 1
    assert len(scripted.calls) == 1
    assert await money(client, account) == (7, 0, 7, 0)


async def test_the_webhook_url_is_part_of_an_async_request(client: Client, tryon_body: Any) -> None:
    key, _ = await new_key(client, credits=10)
    body = tryon_body(model="scripted/alpha", mode="async")
    first = await client.post(ENDPOINT, json=body, headers=idem(key, "job"))
    assert first.status_code == 202, first.text
    hooked = body | {"webhook_url": "https://hooks.example.com/tryon"}
    again = await client.post(ENDPOINT, json=hooked, headers=idem(key, "job"))
    assert again.status_code == 422, again.text


async def test_a_multipart_retry_with_another_boundary_is_the_same_request(
    client: Client, scripted: ScriptedProvider
) -> None:
    key, account = await new_key(client, credits=10)
    person = (SAMPLES / "person.jpg").read_bytes()
    garment = (SAMPLES / "garment.png").read_bytes()
    answers = []
    for name in ("me.jpg", "photo.jpg"):  # another file name, and httpx picks a new boundary
        response = await client.post(
            ENDPOINT,
            files=[
                ("person_images", (name, person, "image/jpeg")),
                ("garment_images", ("top.png", garment, "image/png")),
            ],
            data={"model": "scripted/alpha"},
            headers=idem(key, "upload"),
        )
        assert response.status_code == 200, response.text
        answers.append(response)
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert answers[1].content == answers[0].content
    assert len(scripted.calls) == 1
    assert await money(client, account) == (7, 0, 7, 0)


async def test_a_burst_of_duplicate_async_submissions_creates_one_job(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Any,
) -> None:
    scripted.script("scripted/alpha", Sleep(0.3))
    app = make_app(database_url)
    body = tryon_body(model="scripted/alpha", mode="async")
    limits = httpx.Limits(max_connections=40)
    async with (
        live_server(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as http,
    ):
        key, account = await new_key(app, credits=3)
        headers = idem(key, "burst")
        responses = await asyncio.gather(
            *(http.post(ENDPOINT, json=body, headers=headers) for _ in range(20))
        )
        assert [r.status_code for r in responses] == [202] * 20
        assert len({r.json()["jobId"] for r in responses}) == 1
        job_id = responses[0].json()["jobId"]
        for _ in range(200):
            status = (await http.get(f"{ENDPOINT}/{job_id}", headers=auth(key))).json()
            if status["status"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.05)
        assert status["status"] == "completed", status
        listed = (await http.get(ENDPOINT, headers=auth(key))).json()["data"]
    assert len(listed) == 1
    assert len(scripted.calls) == 1
    assert await money(app, account) == (0, 0, 0, 0)
