"""Async jobs through HTTP: submit (202), poll, list, cancel, deadlines, isolation, credits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from tests.helpers import auth, new_key, own_database
from tests.jobs_helpers import job, money, submit, wait_for, wait_for_attempt
from tryon_core.db.schema import files
from tryon_core.errors import ContentRefused, ProviderUnavailable
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Hang, Sleep

Client = AsyncTestClient[Litestar]


async def test_async_job_is_accepted_then_completes_and_is_charged_once(
    client: Client, tryon_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    accepted = await submit(client, key, tryon_body(model="scripted/alpha"))
    job_id = accepted["jobId"]
    assert job_id.startswith("gen_")
    assert accepted["status"] == "queued"
    assert accepted["statusUrl"] == f"http://testserver.local/api/v1/tryon/{job_id}"
    assert accepted["wsUrl"].startswith(f"ws://testserver.local/api/v1/tryon/{job_id}/ws?token=")
    body = await wait_for(client, key, job_id)
    assert body["status"] == "completed", body
    assert body["id"] == job_id
    assert body["mode"] == "async"
    assert body["model"] == "scripted/alpha"
    assert body["usage"] == {"credits": 3, "reserved": 0}
    assert body["error"] is None
    assert [a["status"] for a in body["attempts"]] == ["succeeded"]
    assert body["completed_at"] and body["created_at"] <= body["completed_at"]
    (image,) = body["images"]
    download = await client.get(image["url"].removeprefix("http://testserver.local"))
    assert download.status_code == 200
    assert download.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert await money(client, account) == (7, 0, 7, 0)
    assert await stored_inputs(client, job_id) == []  # the photos go when the job ends
    root = Path(client.app.state.gateway.settings.storage.path)
    # the rows go first, then the bytes, a moment after the job shows as completed
    for _ in range(100):
        if not list((root / "inputs").rglob("*.*")):
            break
        await asyncio.sleep(0.05)
    assert list((root / "inputs").rglob("*.*")) == []


async def stored_inputs(client: Client, job_id: str) -> list[str]:
    """The storage keys of the job's input images still recorded in the database."""
    async with own_database(client) as database, database.reading() as conn:
        keys = (
            await conn.execute(
                select(files.c.storage_key).where(
                    files.c.generation_id == job_id, files.c.kind == "input"
                )
            )
        ).all()
    return [k.storage_key for k in keys]


def on_disk(client: Client, keys: list[str]) -> list[str]:
    root = Path(client.app.state.gateway.settings.storage.path)
    return [key for key in keys if (root / key).exists()]


async def test_credits_are_held_from_the_202_until_the_job_ends(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    scripted.script("scripted/gamma", Sleep(0.6))
    accepted = await submit(client, key, tryon_body(model="scripted/gamma", n=2))
    assert (await money(client, account))[:2] == (0, 10)
    running = await wait_for(client, key, accepted["jobId"], "processing")
    assert running["usage"] == {"credits": 0, "reserved": 10}
    done = await wait_for(client, key, accepted["jobId"])
    assert done["usage"] == {"credits": 10, "reserved": 0}
    assert await money(client, account) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"person_images": ["data:image/png;base64,AAAA"]}, 415, "person_images[0]"),
        ({"model": "nobody/nothing"}, 404, "model"),
        ({"n": 9}, 400, "n"),
        ({"webhook_url": "http://127.0.0.1:9/hook"}, 400, "webhook_url"),
        ({"webhook_url": "file:///etc/passwd"}, 400, "webhook_url"),
    ],
)
async def test_everything_rejectable_is_rejected_before_the_202(
    client: Client,
    scripted: ScriptedProvider,
    tryon_body: Any,
    change: dict[str, Any],
    status: int,
    param: str,
) -> None:
    key, account = await new_key(client, credits=10)
    response = await client.post(
        "/api/v1/tryon", json=tryon_body(mode="async", **change), headers=auth(key)
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
    listed = await client.get("/api/v1/tryon", headers=auth(key))
    assert listed.json()["data"] == []
    assert await money(client, account) == (10, 0, 10, 0)
    assert scripted.calls == []


async def test_insufficient_credits_is_402_before_the_202(client: Client, tryon_body: Any) -> None:
    key, account = await new_key(client, credits=2)
    response = await client.post(
        "/api/v1/tryon", json=tryon_body(model="scripted/alpha", mode="async"), headers=auth(key)
    )
    assert response.status_code == 402
    assert (await client.get("/api/v1/tryon", headers=auth(key))).json()["data"] == []
    assert await money(client, account) == (2, 0, 2, 0)


async def test_multipart_async_submission(client: Client) -> None:
    from tests.helpers import SAMPLES

    key, _ = await new_key(client)
    response = await client.post(
        "/api/v1/tryon",
        files=[
            ("person_images", ("me.jpg", (SAMPLES / "person.jpg").read_bytes(), "image/jpeg")),
            ("garment_images", ("top.png", (SAMPLES / "garment.png").read_bytes(), "image/png")),
        ],
        data={"mode": "async", "model": "scripted/beta"},
        headers=auth(key),
    )
    assert response.status_code == 202, response.text
    assert response.headers["location"] == response.json()["statusUrl"]
    done = await wait_for(client, key, response.json()["jobId"])
    assert done["status"] == "completed" and done["model"] == "scripted/beta"


async def test_failed_job_is_released_and_reports_its_error(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    scripted.script("scripted/alpha", ContentRefused("no"))
    accepted = await submit(client, key, tryon_body(model="scripted/alpha"))
    body = await wait_for(client, key, accepted["jobId"])
    assert body["status"] == "failed"
    assert body["error"]["type"] == "content_policy_violation"
    assert body["error"]["code"] == 400
    assert body["usage"] == {"credits": 0, "reserved": 0}
    assert body["images"] == []
    assert await money(client, account) == (10, 0, 10, 0)


async def test_fallback_runs_in_jobs_too(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    scripted.script("scripted/alpha", ProviderUnavailable("down"))
    accepted = await submit(
        client, key, tryon_body(model="scripted/alpha", models=["scripted/beta"])
    )
    body = await wait_for(client, key, accepted["jobId"])
    assert body["status"] == "completed"
    assert [(a["model"], a["status"]) for a in body["attempts"]] == [
        ("scripted/alpha", "failed"),
        ("scripted/beta", "succeeded"),
    ]
    assert body["usage"]["credits"] == 2
    assert await money(client, account) == (8, 0, 8, 0)


async def test_another_accounts_job_is_exactly_as_absent_as_a_missing_one(
    client: Client, tryon_body: Any
) -> None:
    owner, _ = await new_key(client)
    stranger, _ = await new_key(client)
    accepted = await submit(client, owner, tryon_body())
    await wait_for(client, owner, accepted["jobId"])
    for method in ("GET", "DELETE"):
        theirs = await client.request(
            method, f"/api/v1/tryon/{accepted['jobId']}", headers=auth(stranger)
        )
        missing = await client.request(
            method, "/api/v1/tryon/gen_doesnotexist000000000000", headers=auth(stranger)
        )
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json() == missing.json()
    listed = await client.get("/api/v1/tryon", headers=auth(stranger))
    assert listed.json()["data"] == []


async def test_list_is_newest_first_with_a_cursor(client: Client, tryon_body: Any) -> None:
    key, _ = await new_key(client, credits=100)
    ids = []
    for _ in range(5):
        ids.append((await submit(client, key, tryon_body(model="scripted/beta")))["jobId"])
    sync = await client.post("/api/v1/tryon", json=tryon_body(), headers=auth(key))
    ids.append(sync.json()["id"])
    for job_id in ids[:5]:
        await wait_for(client, key, job_id)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/tryon", params=params, headers=auth(key))).json()
        assert page["object"] == "list"
        assert len(page["data"]) <= 2
        seen += [item["id"] for item in page["data"]]
        cursor = page["next_cursor"]
        assert page["has_more"] == (cursor is not None)
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    modes = (await client.get("/api/v1/tryon", params={"limit": 1}, headers=auth(key))).json()
    assert modes["data"][0]["mode"] == "sync"
    bad = await client.get("/api/v1/tryon", params={"cursor": "%%%"}, headers=auth(key))
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "cursor"
    completed = await client.get(
        "/api/v1/tryon", params={"status": "completed", "limit": 100}, headers=auth(key)
    )
    assert len(completed.json()["data"]) == 6


async def test_cancelling_a_queued_job_releases_it_at_once(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Any,
) -> None:
    app = make_app(database_url, extra="[jobs]\nworkers = 1\n")
    async with AsyncTestClient(app=app) as client:
        key, account = await new_key(client, credits=20)
        scripted.script("scripted/alpha", Sleep(1.0))
        first = await submit(client, key, tryon_body(model="scripted/alpha"))
        await wait_for(client, key, first["jobId"], "processing")
        second = await submit(client, key, tryon_body(model="scripted/alpha"))
        assert (await job(client, key, second["jobId"]))["status"] == "queued"
        inputs = await stored_inputs(client, second["jobId"])
        assert len(inputs) == 2 and on_disk(client, inputs) == inputs
        cancelled = await client.delete(f"/api/v1/tryon/{second['jobId']}", headers=auth(key))
        assert cancelled.status_code == 200
        body = cancelled.json()
        assert body["status"] == "failed"
        assert body["error"]["type"] == "cancelled"
        assert body["usage"] == {"credits": 0, "reserved": 0}
        assert await money(client, account) == (17, 3, 17, 3)
        assert await stored_inputs(client, second["jobId"]) == []
        assert on_disk(client, inputs) == []
        await wait_for(client, key, first["jobId"])
        assert len(scripted.calls) == 1
        again = await client.delete(f"/api/v1/tryon/{second['jobId']}", headers=auth(key))
        assert again.json() == {**body, "images": []} | {"updated_at": again.json()["updated_at"]}
        assert await money(client, account) == (17, 0, 17, 0)


async def test_cancelling_a_processing_job_stops_before_its_next_attempt(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    scripted.script("scripted/alpha", Sleep(0.5, then=ProviderUnavailable("down")))
    accepted = await submit(
        client, key, tryon_body(model="scripted/alpha", models=["scripted/beta"])
    )
    await wait_for_attempt(client, key, accepted["jobId"])  # its attempt runs: cancel now
    response = await client.delete(f"/api/v1/tryon/{accepted['jobId']}", headers=auth(key))
    assert response.status_code == 200
    assert response.json()["status"] == "processing"
    assert response.json()["cancel_requested"] is True
    body = await wait_for(client, key, accepted["jobId"])
    assert body["status"] == "failed"
    assert body["error"]["type"] == "cancelled"
    assert [a["model"] for a in body["attempts"]] == ["scripted/alpha"]
    assert scripted.calls_to("scripted/beta") == []
    assert await money(client, account) == (10, 0, 10, 0)


async def test_a_processing_job_whose_attempt_succeeds_after_cancel_is_reported_as_it_ends(
    client: Client, scripted: ScriptedProvider, tryon_body: Any
) -> None:
    key, account = await new_key(client, credits=10)
    scripted.script("scripted/alpha", Sleep(0.5))
    accepted = await submit(client, key, tryon_body(model="scripted/alpha"))
    await wait_for_attempt(client, key, accepted["jobId"])
    await client.delete(f"/api/v1/tryon/{accepted['jobId']}", headers=auth(key))
    body = await wait_for(client, key, accepted["jobId"])
    assert body["status"] == "completed"
    assert body["cancel_requested"] is True
    assert await money(client, account) == (7, 0, 7, 0)


async def test_a_job_past_its_deadline_fails_and_is_released(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Any,
) -> None:
    app = make_app(database_url, extra="[jobs]\ndeadline_seconds = 0.5\n")
    async with AsyncTestClient(app=app) as client:
        key, account = await new_key(client, credits=10)
        scripted.script("scripted/alpha", Hang())
        accepted = await submit(client, key, tryon_body(model="scripted/alpha"))
        body = await wait_for(client, key, accepted["jobId"])
        assert body["status"] == "failed"
        assert body["error"]["type"] == "deadline_exceeded"
        assert body["error"]["code"] == 504
        assert await money(client, account) == (10, 0, 10, 0)


async def test_many_jobs_at_once_each_charged_once(
    make_app: Callable[..., Litestar],
    database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Any,
) -> None:
    app = make_app(database_url, extra="[jobs]\nworkers = 4\n")
    async with AsyncTestClient(app=app) as client:
        key, account = await new_key(client, credits=1000)
        for _ in range(30):
            scripted.script("scripted/beta", Sleep(0.05))
        accepted = await asyncio.gather(
            *(submit(client, key, tryon_body(model="scripted/beta")) for _ in range(30))
        )
        bodies = [await wait_for(client, key, a["jobId"], within=60) for a in accepted]
        assert {b["status"] for b in bodies} == {"completed"}
        assert len(scripted.calls) == 30
        assert await money(client, account) == (940, 0, 940, 0)
