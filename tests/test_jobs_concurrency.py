"""Many async jobs at once against a real fake upstream (fal's queue, with delays), through a
real server: every job completes, each was submitted upstream exactly once, and the balance
is exactly what the jobs cost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from litestar import Litestar
from tryon_fal.fake import TEST_KEY
from tryon_fal.fake import create_app as fal_fake

from tests.helpers import SAMPLES, auth, data_url, live_server, new_key
from tests.jobs_helpers import money
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.testing.server import serve_app_in_thread

JOBS = 24
PRICE = 7  # fal/kling-kolors-v1-5


async def test_many_jobs_against_a_slow_upstream(database_url: str, tmp_path: Path) -> None:
    fake = fal_fake(queue_seconds=0.3, run_seconds=0.4)
    with serve_app_in_thread(fake) as upstream:
        settings = parse_settings(
            f"""
[database]
url = "{database_url}"
[storage]
path = "{tmp_path}/files"
[jobs]
workers = 8
[providers.fal]
enabled = true
base_url = "{upstream}"
api_key = "{TEST_KEY}"
poll_interval = 0.1
"""
        )
        app: Litestar = create_app(settings)
        body = {
            "model": "fal/kling-kolors-v1-5",
            "mode": "async",
            "person_images": data_url(SAMPLES / "person.jpg", "image/jpeg"),
            "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
        }
        async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
            key, account = await new_key(app, credits=JOBS * PRICE + 5)
            answers = await asyncio.gather(
                *(http.post("/api/v1/tryon", json=body, headers=auth(key)) for _ in range(JOBS))
            )
            assert [a.status_code for a in answers] == [202] * JOBS
            ids = {a.json()["jobId"] for a in answers}
            assert len(ids) == JOBS
            most_at_once = 0
            for _ in range(1200):
                page = (
                    await http.get("/api/v1/tryon", params={"limit": 100}, headers=auth(key))
                ).json()["data"]
                running = sum(j["status"] == "processing" for j in page)
                most_at_once = max(most_at_once, running)
                if all(j["status"] in ("completed", "failed") for j in page):
                    break
                await asyncio.sleep(0.05)
            assert {j["id"] for j in page} == ids
            assert {j["status"] for j in page} == {"completed"}, [j["error"] for j in page]
            assert 1 < most_at_once <= 8  # they overlapped, within [jobs] workers
        submissions = [
            r for r in fake.state.fake.requests if r.method == "POST" and "request_id" in r.summary
        ]
        assert len(submissions) == JOBS
        assert {j["attempts"][0]["task_id"] for j in page} == {
            r.summary["request_id"] for r in submissions
        }
        assert await money(app, account) == (5, 0, 5, 0)
