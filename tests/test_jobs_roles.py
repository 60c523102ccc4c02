"""Process roles, as an operator runs them: ``tryon serve --no-workers`` accepts async jobs and
never runs them; ``tryon worker`` processes run them, taken from the job queue (SAQ on Redis)
or, without Redis, announced by PostgreSQL NOTIFY or found by their sweep. Duplicate
deliveries, SIGTERM and SIGKILL of a worker mid-job run nothing twice: one upstream submission
per job, balances exact.

The Kling fake (submit-poll) runs in this process and holds every task "processing" until the
test lets it finish, so that a job can be caught at the upstream.
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
from saq.queue.redis import RedisQueue
from sqlalchemy import update
from tryon_kling.fake import TEST_ACCESS_KEY, TEST_SECRET_KEY
from tryon_kling.fake import create_app as kling_fake
from websockets.asyncio.client import connect

from tests.helpers import SAMPLES, auth, data_url
from tests.replicas import messages
from tests.served import Worker, balances, configured, new_account, wait_until
from tryon_core.config import RedisConfig
from tryon_core.db import create_database
from tryon_core.db.schema import generations
from tryon_core.ids import utcnow
from tryon_core.jobs.queue import FUNCTION, connect_queue
from tryon_core.testing.server import serve_app_in_thread

MODEL = "kling/kolors-v1-5"
PRICE = 7
GRACE = 2.0
T = TypeVar("T")


@pytest.fixture
def fake() -> Iterator[Any]:
    app = kling_fake(processing_polls=10**9)  # tasks stay "processing" until the test says
    with serve_app_in_thread(app) as url:
        app.state.url = url
        yield app


class Cluster:
    """One ``tryon serve --no-workers`` and any number of ``tryon worker``, one config."""

    def __init__(
        self, tmp_path: Path, database_url: str, fake: Any, redis: str, *, sweep: float = 0.5
    ) -> None:
        self.tmp_path, self.database_url, self.fake = tmp_path, database_url, fake
        self.redis = tomllib.loads(redis).get("redis") if redis else None
        self.api = configured(
            tmp_path,
            database_url,
            f"""signing_secret = "test-secret-long-enough-for-replicas"
[jobs]
workers = 2
lease_seconds = 2.0
sweep_interval_seconds = {sweep}
shutdown_grace_seconds = {GRACE}
[providers.kling]
enabled = true
base_url = "{fake.state.url}"
access_key = "{TEST_ACCESS_KEY}"
secret_key = "{TEST_SECRET_KEY}"
poll_interval = 0.1
timeout = 120.0
{redis}""",
        )
        self.api.options = ("--no-workers",)
        self.config = self.api.config
        self.workers: list[Worker] = []
        self.key = self.account = ""

    def start(self, workers: int) -> None:
        self.key, self.account = asyncio.run(new_account(self.database_url, credits=100))
        self.api.start()
        for _ in range(workers):
            self.add_worker()

    def add_worker(self) -> Worker:
        worker = Worker(self.config, self.tmp_path / f"worker{len(self.workers)}.log")
        self.workers.append(worker)
        worker.start()
        return worker

    def stop(self) -> None:
        for process in [self.api, *self.workers]:
            process.stop()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api.url, headers=auth(self.key), timeout=30)

    def submit(self, client: httpx.Client, count: int = 1) -> list[str]:
        ids = []
        for _ in range(count):
            response = client.post("/api/v1/tryon", json=_body(mode="async"))
            assert response.status_code == 202, response.text
            ids.append(response.json()["jobId"])
        return ids

    def submissions(self) -> list[str]:
        """The task ids the fake handed out: one per upstream submission."""
        return [
            r.summary["task_id"]
            for r in self.fake.state.fake.requests
            if r.method == "POST" and "task_id" in r.summary
        ]

    def finish_tasks(self) -> None:
        self.fake.state.kling.processing_polls = 0

    def on_queue(self, use: Callable[[RedisQueue], Awaitable[T]]) -> T:
        """``use`` the job queue of this cluster (through a connection of its own)."""
        assert self.redis is not None
        config = RedisConfig(url=self.redis["url"], prefix=self.redis["prefix"])

        async def run() -> T:
            queue = connect_queue(config)
            try:
                return await use(queue)
            finally:
                await queue.disconnect()

        return asyncio.run(run())


def _body(**fields: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "person_images": data_url(SAMPLES / "person.jpg", "image/jpeg"),
        "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
        **fields,
    }


def _jobs(client: httpx.Client, ids: list[str]) -> list[dict[str, Any]]:
    return [client.get(f"/api/v1/tryon/{job_id}").json() for job_id in ids]


def _all_ended(client: httpx.Client, ids: list[str]) -> list[dict[str, Any]] | None:
    jobs = _jobs(client, ids)
    return jobs if all(job["status"] in ("completed", "failed") for job in jobs) else None


def _at_upstream(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    (job,) = _jobs(client, [job_id])
    return job if job["attempts"] and job["attempts"][0]["task_id"] else None


def _check_ran_once(cluster: Cluster, jobs: list[dict[str, Any]]) -> None:
    """Every job completed with one attempt and was charged once; one submission each."""
    for job in jobs:
        assert job["status"] == "completed", job
        assert [a["status"] for a in job["attempts"]] == ["succeeded"], job
        assert job["usage"] == {"credits": PRICE, "reserved": 0}
    submitted = cluster.submissions()
    assert sorted(submitted) == sorted(job["attempts"][0]["task_id"] for job in jobs)
    spent = len(jobs) * PRICE
    assert asyncio.run(balances(cluster.database_url, cluster.account)) == (
        100 - spent,
        0,
        100 - spent,
        0,
    )


@pytest.fixture
def cluster(tmp_path: Path, database_url: str, fake: Any, redis_settings: str) -> Iterator[Cluster]:
    running = Cluster(tmp_path, database_url, fake, redis_settings)
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("queue", ["redis", "sweep"])
def test_jobs_accepted_without_workers_are_run_by_tryon_worker(
    tmp_path: Path, database_url: str, fake: Any, redis_settings: str, queue: str
) -> None:
    cluster = Cluster(tmp_path, database_url, fake, redis_settings if queue == "redis" else "")
    cluster.finish_tasks()
    try:
        cluster.start(workers=0)
        with cluster.client() as client:
            ids = cluster.submit(client, 2)  # before any worker exists
            cluster.add_worker()
            ids += cluster.submit(client, 2)  # to a running worker
            jobs = wait_until(lambda: _all_ended(client, ids), "every job to end")
    finally:
        cluster.stop()
    _check_ran_once(cluster, jobs)
    # its start-up heap frozen before it takes a job (tryon_core.server.collector)
    assert "start-up heap frozen" in cluster.workers[0].log.read_text()
    if queue == "sweep":
        assert "no [redis] url" in cluster.api.log.read_text()
        assert "no [redis] url" in cluster.workers[0].log.read_text()


def test_without_redis_a_websocket_on_the_api_sees_the_completion_made_by_tryon_worker(
    tmp_path: Path, database_url: str, fake: Any
) -> None:
    """On PostgreSQL the job reaches the worker by NOTIFY, and its events come back the same
    way: with sweeps 30 s apart, both processes' sweeps ran at their start, before the job
    existed, and none could run again before it ended. On SQLite (no broker) the worker finds
    it by its sweep and the API's socket re-reads every sweep interval (the fallback)."""
    postgres = not database_url.startswith("sqlite")
    sweep = 30.0 if postgres else 0.5
    cluster = Cluster(tmp_path, database_url, fake, "", sweep=sweep)
    cluster.finish_tasks()
    try:
        cluster.start(workers=1)
        with cluster.client() as client:
            started = time.monotonic()
            answer = client.post("/api/v1/tryon", json=_body(mode="async"))
            assert answer.status_code == 202, answer.text
            link = urlsplit(answer.json()["wsUrl"])
            url = f"ws://{urlsplit(cluster.api.url).netloc}{link.path}?{link.query}"
            received = asyncio.run(_follow(url))
            took = time.monotonic() - started
    finally:
        cluster.stop()
    assert [m["job"]["status"] for m in received][-1] == "completed"
    if postgres:
        assert took < sweep  # no sweep could have started it: NOTIFY did
    _check_ran_once(cluster, [received[-1]["job"]])


async def _follow(url: str) -> list[dict[str, Any]]:
    async with connect(url) as socket:
        return await messages(socket)


def test_no_workers_runs_no_job_but_serves_sync_requests(cluster: Cluster) -> None:
    cluster.finish_tasks()
    cluster.start(workers=0)
    with cluster.client() as client:
        (job_id,) = cluster.submit(client)
        sync = client.post("/api/v1/tryon", json=_body())
        assert sync.status_code == 200, sync.text
        time.sleep(5 * 0.5)  # several sweeps of the API process
        (job,) = _jobs(client, [job_id])
    assert job["status"] == "queued" and job["attempts"] == []
    assert len(cluster.submissions()) == 1  # the sync request's
    waiting = cluster.on_queue(lambda queue: queue.count("queued"))
    assert waiting == 1  # delivered to the queue, taken by nobody


def test_two_workers_and_duplicate_deliveries_run_each_job_once(cluster: Cluster) -> None:
    cluster.fake.state.kling.processing_polls = 3
    cluster.start(workers=2)

    def deliver_again(ids: list[str], round_: int) -> None:
        async def enqueue(queue: RedisQueue) -> None:
            for job_id in ids:  # late and duplicate deliveries, under keys of their own
                for copy in range(2):
                    key = f"{job_id}.dup{round_}.{copy}"
                    await queue.enqueue(FUNCTION, key=key, job_id=job_id, timeout=0, ttl=-1)

        cluster.on_queue(enqueue)

    async def drained(queue: RedisQueue) -> bool:
        return await queue.count("incomplete") == 0

    with cluster.client() as client:
        ids = cluster.submit(client, 6)
        deliver_again(ids, 0)
        wait_until(lambda: _all_ended(client, ids), "every job to end")
        deliver_again(ids, 1)  # after the end: they claim nothing
        wait_until(lambda: cluster.on_queue(drained), "the duplicates to be taken")
        jobs = _jobs(client, ids)
    _check_ran_once(cluster, jobs)


def test_a_job_delivered_again_to_the_worker_running_it_runs_there_once(cluster: Cluster) -> None:
    """A worker renewing its lease late (a busy machine) may be handed the job again by a
    sweep: it does not claim a job it runs already, so no second run polls the task."""
    cluster.start(workers=1)
    (worker,) = cluster.workers
    with cluster.client() as client:
        (job_id,) = cluster.submit(client)
        wait_until(lambda: _at_upstream(client, job_id), "the job to reach the upstream")

        async def enqueue(queue: RedisQueue) -> None:  # the lease lapsed, then a delivery
            await _lapse_lease(cluster.database_url, job_id)
            await queue.enqueue(FUNCTION, key=f"{job_id}.again", job_id=job_id, timeout=0, ttl=-1)

        async def drained(queue: RedisQueue) -> bool:
            return await queue.count("incomplete") == 0

        cluster.on_queue(enqueue)
        wait_until(lambda: cluster.on_queue(drained), "the delivery to be taken")
        cluster.finish_tasks()
        jobs = wait_until(lambda: _all_ended(client, [job_id]), "the job to end")
    _check_ran_once(cluster, jobs)
    assert "resuming upstream task" not in worker.tail()


async def _lapse_lease(database_url: str, job_id: str) -> None:
    database = create_database(database_url)
    try:
        async with database.transaction() as conn:
            await conn.execute(
                update(generations)
                .where(generations.c.id == job_id)
                .values(lease_until=utcnow() - timedelta(seconds=1))
            )
    finally:
        await database.dispose()


@pytest.mark.parametrize("ending", ["finished_in_grace", "handed_back"])
def test_sigterm_stops_a_worker_gracefully_mid_job(cluster: Cluster, ending: str) -> None:
    cluster.start(workers=1)
    with cluster.client() as client:
        (job_id,) = cluster.submit(client)
        before = wait_until(lambda: _at_upstream(client, job_id), "the job to reach Kling")
        first = cluster.workers[0]
        if ending == "finished_in_grace":
            cluster.finish_tasks()  # Kling ends the task within the grace period
            assert first.terminate(within=GRACE + 15) == 0
            (job,) = _jobs(client, [job_id])
            assert job["status"] == "completed"  # by the stopping worker, before it exited
        else:
            assert first.terminate(within=GRACE + 15) == 0
            (job,) = _jobs(client, [job_id])
            assert job["status"] == "processing"  # handed back, not failed
            cluster.finish_tasks()
            cluster.add_worker()  # resumes the task at Kling: no second submission
            (job,) = wait_until(lambda: _all_ended(client, [job_id]), "the job to end")
    assert "running job(s) get" in first.log.read_text()
    assert job["attempts"][0]["task_id"] == before["attempts"][0]["task_id"]
    _check_ran_once(cluster, [job])


def test_sigkill_of_a_worker_mid_job_is_recovered_by_another(cluster: Cluster) -> None:
    cluster.start(workers=1)
    with cluster.client() as client:
        (job_id,) = cluster.submit(client)
        before = wait_until(lambda: _at_upstream(client, job_id), "the job to reach Kling")
        cluster.add_worker()
        cluster.workers[0].kill()
        cluster.finish_tasks()
        (job,) = wait_until(lambda: _all_ended(client, [job_id]), "the job to end")
    assert job["attempts"][0]["task_id"] == before["attempts"][0]["task_id"]
    _check_ran_once(cluster, [job])
