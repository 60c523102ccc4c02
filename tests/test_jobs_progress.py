"""A job's progress shows the model tried and the upstream's own state (Kling's fake here)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from tryon_kling.fake import TEST_ACCESS_KEY, TEST_SECRET_KEY
from tryon_kling.fake import create_app as kling_fake

from tests.helpers import SAMPLES, auth, data_url, new_key
from tests.jobs_helpers import job, submit
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.testing.server import serve_app_in_thread


@pytest.fixture
def kling() -> Iterator[str]:
    with serve_app_in_thread(kling_fake(processing_polls=6)) as url:
        yield url


async def test_progress_follows_the_attempt_and_the_upstream_state(
    kling: str, tmp_path: Path
) -> None:
    settings = parse_settings(
        f"""
[database]
url = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"
[storage]
path = "{tmp_path}/files"
[providers.kling]
enabled = true
base_url = "{kling}"
access_key = "{TEST_ACCESS_KEY}"
secret_key = "{TEST_SECRET_KEY}"
poll_interval = 0.1
"""
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        key, _ = await new_key(client, credits=50)
        body: dict[str, Any] = {
            "model": "kling/kolors-v1-5",
            "person_images": data_url(SAMPLES / "person.jpg", "image/jpeg"),
            "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
        }
        accepted = await submit(client, key, body)
        seen: list[tuple[str, str | None]] = []
        for _ in range(600):
            current = await job(client, key, accepted["jobId"])
            step = current["progress"]
            state = (
                current["status"],
                step and f"{step['attempt']} {step['model']} {step['state']}",
            )
            if not seen or seen[-1] != state:
                seen.append(state)
            if current["status"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.01)
        assert current["status"] == "completed", current
        progress = [p for s, p in seen if s == "processing" and p]
        # "started" and "submitted" last milliseconds; Kling's own "processing" lasts 6 polls
        assert "1 kling/kolors-v1-5 processing" in progress
        assert set(progress) <= {
            f"1 kling/kolors-v1-5 {state}"
            for state in ("started", "submitted", "processing", "succeed", "succeeded")
        }
        assert seen[-1] == ("completed", None)
        res = await client.get("/api/v1/tryon", headers=auth(key))
        assert res.json()["data"][0]["progress"] is None
