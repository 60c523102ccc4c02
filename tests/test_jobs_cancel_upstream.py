"""DELETE on a processing job: cancelled upstream where the provider allows it (fal's queue),
otherwise the attempt runs to its end (Kling has no cancel) and the job is reported as it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tryon_fal.fake import TEST_KEY
from tryon_fal.fake import create_app as fal_fake
from tryon_kling.fake import TEST_ACCESS_KEY, TEST_SECRET_KEY
from tryon_kling.fake import create_app as kling_fake

from tests.helpers import SAMPLES, auth, data_url, new_key
from tests.jobs_helpers import money, submit, wait_for
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.provider import ProviderContext
from tryon_core.testing.fakes import Fault
from tryon_core.testing.server import serve_app_in_thread


class Upstreams:
    def __init__(self, fal: tuple[str, Litestar], kling: tuple[str, Litestar]) -> None:
        self.fal_url, self.fal = fal
        self.kling_url, self.kling = kling


@pytest.fixture
def upstreams() -> Iterator[Upstreams]:
    fal, kling = fal_fake(), kling_fake(processing_polls=8)
    with serve_app_in_thread(fal) as fal_url, serve_app_in_thread(kling) as kling_url:
        yield Upstreams((fal_url, fal), (kling_url, kling))


def gateway(
    upstreams: Upstreams, tmp_path: Path, *, deadline: float = 3600.0, timeout: float = 120.0
) -> Litestar:
    return create_app(
        parse_settings(
            f"""
[jobs]
deadline_seconds = {deadline}
[database]
url = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"
[storage]
path = "{tmp_path}/files"
[providers.fal]
enabled = true
base_url = "{upstreams.fal_url}"
api_key = "{TEST_KEY}"
poll_interval = 0.1
timeout = {timeout}
[providers.kling]
enabled = true
base_url = "{upstreams.kling_url}"
access_key = "{TEST_ACCESS_KEY}"
secret_key = "{TEST_SECRET_KEY}"
poll_interval = 0.1
"""
        )
    )


def body(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "category": "tops",
        "person_images": data_url(SAMPLES / "person.jpg", "image/jpeg"),
        "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
    }


async def accepted_upstream(client: AsyncTestClient[Litestar], key: str, job_id: str) -> None:
    for _ in range(400):
        job = (await client.get(f"/api/v1/tryon/{job_id}", headers=auth(key))).json()
        if job["attempts"] and job["attempts"][0]["task_id"]:
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the upstream never accepted the task")


async def test_fal_drops_the_task_and_the_job_is_released(
    upstreams: Upstreams, tmp_path: Path
) -> None:
    upstreams.fal.state.fake.inject(Fault(kind="slow_task", seconds=60))
    async with AsyncTestClient(app=gateway(upstreams, tmp_path)) as client:
        key, account = await new_key(client, credits=50)
        accepted = await submit(client, key, body("fal/kling-kolors-v1-5"))
        await accepted_upstream(client, key, accepted["jobId"])
        response = await client.delete(f"/api/v1/tryon/{accepted['jobId']}", headers=auth(key))
        assert response.status_code == 200
        job = await wait_for(client, key, accepted["jobId"], within=10)
        assert job["status"] == "failed"
        assert job["error"]["type"] == "cancelled"
        assert [a["status"] for a in job["attempts"]] == ["cancelled"]
        assert await money(client, account) == (50, 0, 50, 0)
    cancels = [r for r in upstreams.fal.state.fake.requests if r.method == "PUT"]
    assert len(cancels) == 1
    assert cancels[0].path.endswith(f"/requests/{job['attempts'][0]['task_id']}/cancel")


async def test_kling_cannot_cancel_so_the_attempt_finishes_and_is_charged(
    upstreams: Upstreams, tmp_path: Path
) -> None:
    async with AsyncTestClient(app=gateway(upstreams, tmp_path)) as client:
        key, account = await new_key(client, credits=50)
        accepted = await submit(client, key, body("kling/kolors-v1-5"))
        await accepted_upstream(client, key, accepted["jobId"])
        response = await client.delete(f"/api/v1/tryon/{accepted['jobId']}", headers=auth(key))
        assert response.json()["cancel_requested"] is True
        job = await wait_for(client, key, accepted["jobId"], within=30)
        assert job["status"] == "completed"
        assert job["usage"]["credits"] == 7
        assert await money(client, account) == (43, 0, 43, 0)


async def test_fal_cancel_after_the_end_is_too_late(upstreams: Upstreams, tmp_path: Path) -> None:
    async with AsyncTestClient(app=gateway(upstreams, tmp_path)) as client:
        key, _ = await new_key(client, credits=50)
        accepted = await submit(client, key, body("fal/kling-kolors-v1-5"))
        done = await wait_for(client, key, accepted["jobId"], within=20)
        assert done["status"] == "completed"
        (attempt,) = done["attempts"]
        deleted = await client.delete(f"/api/v1/tryon/{accepted['jobId']}", headers=auth(key))
        assert deleted.json()["status"] == "completed"  # an ended job is not changed
        adapter = client.app.state.gateway.catalog.entries["fal/kling-kolors-v1-5"].adapter
        config = client.app.state.gateway.catalog.entries["fal/kling-kolors-v1-5"].config

        async def record(_: str) -> None:
            return None

        async with httpx.AsyncClient() as http:
            context = ProviderContext(http=http, config=config, timeout=10.0, record_task=record)
            assert await adapter.cancel(attempt["model"], attempt["task_id"], context) is False
            assert await adapter.cancel(attempt["model"], "unknown-id", context) is False


async def test_a_task_abandoned_at_the_deadline_is_cancelled_upstream(
    upstreams: Upstreams, tmp_path: Path
) -> None:
    upstreams.fal.state.fake.inject(Fault(kind="slow_task", seconds=60))
    async with AsyncTestClient(app=gateway(upstreams, tmp_path, deadline=1.5)) as client:
        key, account = await new_key(client, credits=50)
        accepted = await submit(client, key, body("fal/kling-kolors-v1-5"))
        job = await wait_for(client, key, accepted["jobId"], within=10)
        assert job["status"] == "failed"
        assert job["error"]["type"] == "deadline_exceeded"
        assert await money(client, account) == (50, 0, 50, 0)
    cancels = [r for r in upstreams.fal.state.fake.requests if r.method == "PUT"]
    assert [r.path.rsplit("/", 2)[-2] for r in cancels] == [job["attempts"][0]["task_id"]]


async def test_a_task_abandoned_at_an_attempt_timeout_is_cancelled_upstream(
    upstreams: Upstreams, tmp_path: Path
) -> None:
    """Sync too: the attempt times out, nobody will collect the task, so fal is told to drop it."""
    upstreams.fal.state.fake.inject(Fault(kind="slow_task", seconds=60))
    async with AsyncTestClient(app=gateway(upstreams, tmp_path, timeout=1.5)) as client:
        key, account = await new_key(client, credits=50)
        response = await client.post(
            "/api/v1/tryon", json=body("fal/kling-kolors-v1-5"), headers=auth(key)
        )
        assert response.status_code == 504, response.text
        (attempt,) = response.json()["error"]["metadata"]["attempts"]
        assert await money(client, account) == (50, 0, 50, 0)
    cancels = [r for r in upstreams.fal.state.fake.requests if r.method == "PUT"]
    assert [r.path.rsplit("/", 2)[-2] for r in cancels] == [attempt["task_id"]]
