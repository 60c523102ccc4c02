"""The distributed shape, proven with real processes on this machine (issue 11).

HAProxy balances three ``tryon serve --no-workers`` replicas; two ``tryon worker`` processes run
the jobs; PostgreSQL keeps the rows, Redis the queue, events, health and counters, SeaweedFS the
files. Kling's fake (submit-poll, slow tasks) and Gemini's fake (for a cool-down) answer as the
upstreams. The test loses a worker and a replica to SIGKILL mid-way, then Redis and S3 in turn,
and checks what a paying client and the operator would: every job done once, every credit
accounted for, events and links working across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import Litestar
from tryon_gemini.fake import create_app as gemini_fake
from tryon_kling.fake import create_app as kling_fake
from websockets.asyncio.client import connect

from tests.cluster import LoadBalancer, haproxy_binary, started
from tests.conftest import redis_test_url
from tests.helpers import SAMPLES, auth, data_url
from tests.seaweed import SeaweedFS, free_ports
from tests.served import Gateway, Worker, balances, new_account
from tests.tcp_proxy import TcpProxy
from tryon_core.testing.fakes import mount_fakes
from tryon_core.testing.server import serve_app

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

JOBS = 60
KILL_AFTER = 20
"""Accepted jobs after which one worker and one replica are SIGKILLed."""
KLING = "kling/kolors-v1-5"
GEMINI = "google/gemini-2.5-flash-image"
CREDITS = 100_000
TERMINAL = ("completed", "failed")
SUBMIT_PATIENCE = 240.0
"""Seconds a client retries one submission: longer than the longest a request can run
(``tryon_core.idempotency.max_wait``: fetch timeout, each model's timeout, a minute's slack),
after which the claim of a request cut by a dead replica is taken over."""


@dataclass
class Cluster:
    lb: LoadBalancer
    apis: list[Gateway]
    workers: list[Gateway]
    redis: TcpProxy
    s3: TcpProxy
    fakes: str
    kling: Litestar
    gemini: Litestar
    database_url: str
    key: str
    account_id: str


def _haproxy() -> str:
    binary = haproxy_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but haproxy is not installed (.ci/run installs it)")
        pytest.skip("the cluster test needs HAProxy (apt-get install haproxy)")
    return binary


def _config(
    folder: Path, *, database_url: str, redis: str, s3: str, fakes: str, public: str
) -> Path:
    path = folder / "tryon.toml"
    path.write_text(
        f"""
[server]
public_url = "{public}"

[database]
url = "{database_url}"

[fetch]
timeout = 5.0

[storage]
backend = "s3"
path = "{folder}/files"
signing_secret = "{secrets.token_hex(32)}"
{s3}
timeout = 2.0

[redis]
url = "{redis}"
prefix = "cluster-{secrets.token_hex(4)}"
timeout = 1.0

[jobs]
workers = 8
lease_seconds = 10.0
sweep_interval_seconds = 1.0
shutdown_grace_seconds = 2.0

[routing]
failure_threshold = 2
cooldown_seconds = 600.0

[routing.fallbacks]
"{GEMINI}" = ["{KLING}"]

[providers.kling]
enabled = true
base_url = "{fakes}/kling"
access_key = "test-access-key"
secret_key = "test-secret-key"
timeout = 30.0
poll_interval = 0.25

[providers.gemini]
enabled = true
base_url = "{fakes}/gemini"
api_key = "test-key"
timeout = 5.0
"""
    )
    return path


@contextlib.asynccontextmanager
async def _cluster(
    tmp_path: Path, seaweedfs: SeaweedFS, database_url: str
) -> AsyncIterator[Cluster]:
    binary = _haproxy()
    redis_url = urlsplit(redis_test_url())
    redis = TcpProxy((redis_url.hostname or "127.0.0.1", redis_url.port or 6379))
    s3_target = urlsplit(seaweedfs.endpoint)
    s3 = TcpProxy((s3_target.hostname or "127.0.0.1", s3_target.port or 80))
    await redis.start()
    await s3.start()
    kling = kling_fake(processing_polls=8)  # about 2 s a task at poll_interval 0.25
    gemini = gemini_fake()
    ports = free_ports(3)
    lb = LoadBalancer(binary, tmp_path, ports)
    apis: list[Gateway] = []
    workers: list[Gateway] = []
    try:
        async with serve_app(mount_fakes({"kling": kling, "gemini": gemini})) as fakes:
            bucket = seaweedfs.new_bucket()
            storage = seaweedfs.storage_toml(bucket, endpoint=f"http://127.0.0.1:{s3.port}")
            config = _config(
                tmp_path,
                database_url=database_url,
                redis=f"redis://127.0.0.1:{redis.port}{redis_url.path or '/0'}",
                s3=storage,
                fakes=fakes,
                public=lb.url,
            )
            apis = [
                Gateway(config, port, tmp_path / f"api{i}.log", "--no-workers", "--port", str(port))
                for i, port in enumerate(ports)
            ]
            workers = [Worker(config, tmp_path / f"w{i}.log") for i in range(2)]
            for process in (*apis, *workers):  # all at once, on a fresh database: one migrates
                process.launch()
            await asyncio.gather(*(started(process) for process in (*apis, *workers)))
            lb.start()
            await lb.ready()
            key, account_id = await new_account(database_url, CREDITS)  # migrated by now
            yield Cluster(
                lb=lb,
                apis=apis,
                workers=workers,
                redis=redis,
                s3=s3,
                fakes=fakes,
                kling=kling,
                gemini=gemini,
                database_url=database_url,
                key=key,
                account_id=account_id,
            )
    finally:
        lb.stop()
        for process in (*apis, *workers):
            process.stop()
        await redis.close()
        await s3.close()


def _body(model: str = KLING, **fields: Any) -> dict[str, Any]:
    return {
        "model": model,
        "person_images": [data_url(SAMPLES / "person.jpg", "image/jpeg")],
        "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
        **fields,
    }


async def _submit(client: httpx.AsyncClient, key: str, idempotency: str) -> dict[str, Any]:
    """Submit an async job as a careful client does: a request cut by a lost replica is sent
    again with the same Idempotency-Key until it has an answer, so the job is accepted (and
    charged) once. The key's first request may have died after keeping the job but before
    keeping its answer: then the gateway names the job (``idempotency_answer_lost``), once
    the dead request's longest possible run has passed."""
    headers = {**auth(key), "Idempotency-Key": idempotency}
    end = time.monotonic() + SUBMIT_PATIENCE
    last = "nothing"
    while time.monotonic() < end:
        try:
            response = await client.post("/api/v1/tryon", json=_body(mode="async"), headers=headers)
        except httpx.TransportError as exc:
            last = repr(exc)
            await asyncio.sleep(0.25)
            continue
        last = f"{response.status_code} {response.text[:300]}"
        if response.status_code == 202:
            accepted: dict[str, Any] = response.json()
            return accepted
        error = response.json()["error"] if response.status_code < 500 else {}
        if error.get("type") == "idempotency_answer_lost":
            return {"jobId": error["metadata"]["generation_id"], "wsUrl": None}
        assert response.status_code in (502, 503, 504, 409), last
        await asyncio.sleep(0.5)
    raise AssertionError(f"job {idempotency} was never accepted; last answer: {last}")


async def _job(client: httpx.AsyncClient, key: str, job_id: str) -> dict[str, Any]:
    for _ in range(20):
        with contextlib.suppress(httpx.TransportError):
            response = await client.get(f"/api/v1/tryon/{job_id}", headers=auth(key))
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
        await asyncio.sleep(0.25)
    raise AssertionError(f"job {job_id} could not be read")


async def _until_done(
    client: httpx.AsyncClient, key: str, job_ids: list[str], within: float = 180.0
) -> dict[str, dict[str, Any]]:
    end = time.monotonic() + within
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(job_ids):
        for job_id in job_ids:
            if job_id not in done:
                body = await _job(client, key, job_id)
                if body["status"] in TERMINAL:
                    done[job_id] = body
        pending = sorted(set(job_ids) - set(done))
        assert time.monotonic() < end, f"{len(pending)} jobs never ended: {pending[:5]}"
        await asyncio.sleep(0.5)
    return done


async def _watch(url: str, replica: Gateway, within: float = 240.0) -> tuple[float, bool]:
    """Follow a job's WebSocket on ``replica`` (not through the balancer): the seconds from the
    job's completion (as the worker recorded it) to the message that told of it, and whether
    that message was pushed (the socket had told of an earlier status first). With Redis a
    socket re-reads its job only when told of a change, so a pushed completion came through it."""
    parts = urlsplit(url)
    direct = parts._replace(netloc=f"127.0.0.1:{replica.port}").geturl()
    seen: list[tuple[float, str]] = []
    async with asyncio.timeout(within), connect(direct, open_timeout=10) as socket:
        async for raw in socket:
            received = time.time()
            job = json.loads(raw).get("job") or {}
            seen.append((received, job.get("status", "?")))
            if job.get("status") in TERMINAL:
                assert job["status"] == "completed", job
                finished = datetime.fromisoformat(job["completed_at"]).timestamp()
                return received - finished, len(seen) > 1
    raise AssertionError(f"the socket closed before the job ended; it said {seen}")


async def _submissions(fakes: str) -> list[dict[str, Any]]:
    """Kling tasks its fake accepted (a task id given back)."""
    async with httpx.AsyncClient() as client:
        requests = (await client.get(f"{fakes}/kling/_fake/requests")).json()
    return [
        r
        for r in requests
        if r["method"] == "POST" and r["summary"].get("task_id") and "fault" not in r["summary"]
    ]


async def test_a_cluster_loses_a_worker_a_replica_redis_and_s3_and_nothing_is_lost(
    tmp_path: Path, seaweedfs: SeaweedFS, postgres_database_url: str
) -> None:
    async with _cluster(tmp_path, seaweedfs, postgres_database_url) as cluster:
        async with httpx.AsyncClient(base_url=cluster.lb.url, timeout=30) as client:
            await _jobs_survive_sigkill(cluster, client)
            await _links_work_through_every_replica(cluster, client)
            await _cooldown_is_shared(cluster)
            await _redis_outage(cluster, client)
            await _s3_outage(cluster, client)
        balance, reserved, ledger_balance, ledger_reserved = await balances(
            cluster.database_url, cluster.account_id
        )
        assert (balance, reserved) == (ledger_balance, ledger_reserved)
        assert reserved == 0


async def _jobs_survive_sigkill(cluster: Cluster, client: httpx.AsyncClient) -> None:
    """60 async jobs through the balancer; a worker and a replica are SIGKILLed after 20 were
    accepted. Every job completes, each with one upstream submission, and the bill is exact."""
    accepted: list[dict[str, Any]] = []
    gate = asyncio.Semaphore(8)
    killed = asyncio.Event()
    watchers: list[asyncio.Future[tuple[float, bool]]] = []

    async def one(i: int) -> None:
        async with gate:
            job = await _submit(client, cluster.key, f"cluster-{i}")
        accepted.append(job)
        if len(accepted) >= KILL_AFTER and not killed.is_set():
            killed.set()
            cluster.workers[0].kill()
            cluster.apis[1].kill()
        elif killed.is_set() and job["wsUrl"] and len(watchers) < 3:
            # a WebSocket on replica A (the first) for a job a worker elsewhere completes
            watchers.append(asyncio.ensure_future(_watch(job["wsUrl"], cluster.apis[0])))

    await asyncio.gather(*(one(i) for i in range(JOBS)))
    assert killed.is_set() and len(watchers) == 3
    job_ids = [job["jobId"] for job in accepted]
    assert len(set(job_ids)) == JOBS
    done = await _until_done(client, cluster.key, job_ids)
    failed = {i: b["error"] for i, b in done.items() if b["status"] != "completed"}
    assert not failed, failed
    watched = await asyncio.gather(*watchers)
    delays = [round(delay, 3) for delay, _ in watched]
    print(f"WebSocket on another replica than the worker: completion seen after {delays} s")
    # how soon is a figure (printed), not a test: a busy machine delays any of them
    assert any(pushed for _, pushed in watched), "no completion was pushed to a WebSocket"
    submissions = await _submissions(cluster.fakes)
    assert len(submissions) == JOBS, f"{len(submissions)} Kling submissions for {JOBS} jobs"
    assert all(len(body["attempts"]) == 1 for body in done.values())
    charged = [body["usage"]["credits"] for body in done.values()]
    assert len(set(charged)) == 1 and charged[0] > 0
    balance, reserved, ledger_balance, ledger_reserved = await balances(
        cluster.database_url, cluster.account_id
    )
    assert (balance, reserved) == (CREDITS - sum(charged), 0)
    assert (ledger_balance, ledger_reserved) == (balance, reserved)


async def _links_work_through_every_replica(cluster: Cluster, client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/tryon", json=_body(), headers=auth(cluster.key))
    assert response.status_code == 200, response.text
    link = urlsplit(response.json()["images"][0]["url"])
    for replica in (api for api in cluster.apis if api.alive):
        async with httpx.AsyncClient(base_url=replica.url) as direct:
            got = await direct.get(f"{link.path}?{link.query}")
        assert got.status_code == 200, (replica.url, got.text)
        assert got.headers["content-type"].startswith("image/")


async def _cooldown_is_shared(cluster: Cluster) -> None:
    """Gemini fails through replica A (Kling, its fallback, serves) until it cools down;
    replica C then skips it: Kling serves at once and Gemini's fake hears nothing."""
    gemini_state = cluster.gemini.state.fake
    gemini_state.inject(*["server_error"] * 50)
    first, third = cluster.apis[0], cluster.apis[2]
    headers = auth(cluster.key)
    async with httpx.AsyncClient(base_url=first.url, timeout=60) as a:
        for _ in range(2):  # [routing] failure_threshold
            response = await a.post("/api/v1/tryon", json=_body(GEMINI), headers=headers)
            assert response.status_code == 200, response.text
            tried = [attempt["model"] for attempt in response.json()["attempts"]]
            assert tried == [GEMINI, KLING], tried
    calls = len(gemini_state.requests)
    async with httpx.AsyncClient(base_url=third.url, timeout=60) as c:
        response = await c.post("/api/v1/tryon", json=_body(GEMINI), headers=headers)
    assert response.status_code == 200, response.text
    assert [attempt["model"] for attempt in response.json()["attempts"]] == [KLING]
    assert len(gemini_state.requests) == calls, "replica C called a model cooling down"
    gemini_state.reset()


async def _redis_outage(cluster: Cluster, client: httpx.AsyncClient) -> None:
    """Redis away: a new async job is a clean 503 (not charged); a job accepted just before
    completes once Redis is back; sync try-ons go on meanwhile."""
    before = await _submit(client, cluster.key, "before-redis-outage")
    await cluster.redis.cut()
    try:
        money = await balances(cluster.database_url, cluster.account_id)
        refused = await client.post(
            "/api/v1/tryon", json=_body(mode="async"), headers=auth(cluster.key)
        )
        assert refused.status_code == 503, refused.text
        assert "Retry-After" in refused.headers
        assert refused.json()["error"]["code"] == 503
        assert await balances(cluster.database_url, cluster.account_id) == money
        sync = await client.post("/api/v1/tryon", json=_body(), headers=auth(cluster.key))
        assert sync.status_code == 200, sync.text
    finally:
        await cluster.redis.restore()
    after = await _submit(client, cluster.key, "after-redis-outage")
    done = await _until_done(client, cluster.key, [before["jobId"], after["jobId"]], within=60)
    assert {body["status"] for body in done.values()} == {"completed"}


async def _s3_outage(cluster: Cluster, client: httpx.AsyncClient) -> None:
    """S3 away: requests that must keep a file are a clean 503, not charged; back, they work."""
    await cluster.s3.cut()
    try:
        money = await balances(cluster.database_url, cluster.account_id)
        for body in (_body(), _body(mode="async")):
            refused = await client.post("/api/v1/tryon", json=body, headers=auth(cluster.key))
            assert refused.status_code == 503, refused.text
            assert "Retry-After" in refused.headers
        assert await balances(cluster.database_url, cluster.account_id) == money
    finally:
        await cluster.s3.restore()
    again = await client.post("/api/v1/tryon", json=_body(), headers=auth(cluster.key))
    assert again.status_code == 200, again.text
