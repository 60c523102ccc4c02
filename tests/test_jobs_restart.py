"""A real gateway process killed with SIGKILL mid-job loses no job and no credit.

The Kling fake (submit-poll) runs in this process and holds every task "processing" until
the test lets it finish. The gateway runs as ``tryon serve`` in a subprocess, with two
workers: two jobs are processing (their Kling task ids recorded), two are queued. The test
kills the process, starts it again and shows: the processing jobs resume polling their tasks
(no second submission), the queued ones run, every job completes with exactly one upstream
submission, and the account's balance and ledger are exactly right. A second run moves one
queued job's deadline into the past while the gateway is down (as if it had been down that
long): that job fails and is released, the others complete.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from tryon_kling.fake import PATH, TEST_ACCESS_KEY, TEST_SECRET_KEY
from tryon_kling.fake import create_app as kling_fake

from tests.helpers import SAMPLES, auth, data_url
from tests.served import Gateway, balances, configured, new_account, wait_until
from tryon_core.db import create_database
from tryon_core.db.schema import generations
from tryon_core.ids import utcnow
from tryon_core.testing.server import serve_app_in_thread

MODEL = "kling/kolors-v1-5"
PRICE = 7


@pytest.fixture
def fake() -> Iterator[tuple[str, Any]]:
    app = kling_fake(processing_polls=10**9)  # tasks stay "processing" until the test says
    with serve_app_in_thread(app) as url:
        yield url, app


async def _overdue(database_url: str, job_id: str) -> None:
    database = create_database(database_url)
    try:
        async with database.transaction() as conn:
            await conn.execute(
                update(generations).where(generations.c.id == job_id).values(deadline_at=utcnow())
            )
    finally:
        await database.dispose()


def _serve(tmp_path: Path, database_url: str, fake_url: str, jobs: str, kling: str = "") -> Gateway:
    """``tryon serve`` on a free port against the Kling fake, with these ``[jobs]`` keys."""
    return configured(
        tmp_path,
        database_url,
        f"""
[jobs]
{jobs}
[providers.kling]
enabled = true
base_url = "{fake_url}"
access_key = "{TEST_ACCESS_KEY}"
secret_key = "{TEST_SECRET_KEY}"
poll_interval = 0.1
{kling}
""",
        name="serve",
    )


def _body(**fields: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "person_images": data_url(SAMPLES / "person.jpg", "image/jpeg"),
        "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
        **fields,
    }


@pytest.mark.parametrize("down_past_a_deadline", [False, True], ids=["back_in_time", "overdue"])
def test_sigkill_loses_no_job_and_no_credit(
    fake: tuple[str, Any], database_url: str, tmp_path: Path, down_past_a_deadline: bool
) -> None:
    fake_url, fake_app = fake
    gateway = _serve(
        tmp_path,
        database_url,
        fake_url,
        "workers = 2\nlease_seconds = 2.0\nsweep_interval_seconds = 0.5",
        kling="timeout = 120.0",
    )
    key, account_id = asyncio.run(new_account(database_url, credits=100))
    body = _body(mode="async")
    gateway.start()
    try:
        with httpx.Client(base_url=gateway.url, headers=auth(key), timeout=30) as client:
            ids = []
            for _ in range(4):
                response = client.post("/api/v1/tryon", json=body)
                assert response.status_code == 202, response.text
                ids.append(response.json()["jobId"])

            def jobs() -> list[dict[str, Any]]:
                return [client.get(f"/api/v1/tryon/{i}").json() for i in ids]

            def two_submitted_two_queued() -> bool:
                states = jobs()
                running = [
                    j for j in states if j["attempts"] and j["attempts"][0]["task_id"] is not None
                ]
                return len(running) == 2 and sum(j["status"] == "queued" for j in states) == 2

            wait_until(two_submitted_two_queued, "two jobs at Kling and two queued")
            before = jobs()
            gateway.kill()

        submissions = [
            r for r in fake_app.state.fake.requests if r.method == "POST" and "task_id" in r.summary
        ]
        assert len(submissions) == 2
        running = [j["id"] for j in before if j["status"] == "processing"]
        queued = [j["id"] for j in before if j["status"] == "queued"]
        overdue = queued[1] if down_past_a_deadline else None
        if overdue is not None:
            asyncio.run(_overdue(database_url, overdue))
        fake_app.state.kling.processing_polls = 0  # Kling finishes the tasks meanwhile

        gateway.start()
        with httpx.Client(base_url=gateway.url, headers=auth(key), timeout=30) as client:

            def ended() -> list[dict[str, Any]] | None:
                states = [client.get(f"/api/v1/tryon/{i}").json() for i in ids]
                return (
                    states if all(j["status"] in ("completed", "failed") for j in states) else None
                )

            final = {j["id"]: j for j in wait_until(ended, "every job to end")}
    finally:
        gateway.stop()

    ran = [job_id for job_id in ids if job_id != overdue]
    for job_id in ran:
        assert final[job_id]["status"] == "completed", final[job_id]
        assert final[job_id]["usage"] == {"credits": PRICE, "reserved": 0}
        assert [a["status"] for a in final[job_id]["attempts"]] == ["succeeded"]
    if overdue is not None:
        assert final[overdue]["status"] == "failed"
        assert final[overdue]["error"]["type"] == "deadline_exceeded"
        assert final[overdue]["attempts"] == []
    for job_id in running:  # resumed: the task recorded before the kill, not a new one
        before_task = next(j for j in before if j["id"] == job_id)["attempts"][0]["task_id"]
        assert final[job_id]["attempts"][0]["task_id"] == before_task
    submissions = [
        r for r in fake_app.state.fake.requests if r.method == "POST" and "task_id" in r.summary
    ]
    assert len(submissions) == len(ran)  # exactly one per job that ran
    assert {r.summary["task_id"] for r in submissions} == {
        final[job_id]["attempts"][0]["task_id"] for job_id in ran
    }
    assert not [
        r for r in fake_app.state.fake.requests if r.path == PATH and "rejected" in r.summary
    ]
    spent = len(ran) * PRICE
    assert asyncio.run(balances(database_url, account_id)) == (100 - spent, 0, 100 - spent, 0)


def test_a_sync_request_cut_by_sigkill_is_released_after_its_last_possible_moment(
    fake: tuple[str, Any], database_url: str, tmp_path: Path
) -> None:
    """A sync generation has no worker to resume it: once the longest it could have run has
    passed (every candidate's timeout plus slack; moved into the past here, as if that much
    time had gone by), the sweeper of the restarted gateway releases it."""
    import threading

    fake_url, _ = fake
    gateway = _serve(tmp_path, database_url, fake_url, "sweep_interval_seconds = 0.5")
    key, account_id = asyncio.run(new_account(database_url, credits=20))
    body = _body()
    gateway.start()
    try:

        def call() -> None:
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(f"{gateway.url}/api/v1/tryon", json=body, headers=auth(key), timeout=30)

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        with httpx.Client(base_url=gateway.url, headers=auth(key), timeout=30) as client:

            def held() -> list[dict[str, Any]] | None:
                jobs = client.get("/api/v1/tryon").json()["data"]
                return (
                    jobs
                    if jobs and jobs[0]["attempts"] and jobs[0]["attempts"][0]["task_id"]
                    else None
                )

            (job,) = wait_until(held, "the sync request to reach Kling")
            assert asyncio.run(balances(database_url, account_id))[:2] == (20 - PRICE, PRICE)
            gateway.kill()
        caller.join(timeout=10)
        asyncio.run(_overdue(database_url, job["id"]))
        gateway.start()
        with httpx.Client(base_url=gateway.url, headers=auth(key), timeout=30) as client:

            def ended() -> dict[str, Any] | None:
                found: dict[str, Any] = client.get(f"/api/v1/tryon/{job['id']}").json()
                return found if found["status"] == "failed" else None

            final = wait_until(ended, "the cut request to be released")
    finally:
        gateway.stop()
    assert final["mode"] == "sync"
    assert final["error"]["type"] == "interrupted"
    assert final["usage"] == {"credits": 0, "reserved": 0}
    assert asyncio.run(balances(database_url, account_id)) == (20, 0, 20, 0)
