"""The cluster: async jobs per second accepted and completed by 1, 2 and 3 API replicas
(``tryon serve --no-workers`` behind HAProxy) with 1 and 2 ``tryon worker`` processes, on
PostgreSQL, Redis and (when ``weed`` is installed) SeaweedFS, against Kling's fake upstream in its
own process; and the same load on one ``tryon serve`` process running API and workers together,
the ratio's baseline. Prints figures, asserts nothing.

    uv run python benchmarks/bench_cluster.py [--jobs 120] [--concurrency 16] [--workers 8]

Needs HAProxy, PostgreSQL (``TRYON_TEST_POSTGRES_URL``) and Redis (``TRYON_TEST_REDIS_URL``);
without one of them it says so and exits 0. Every process shares this machine's cores
(``os.cpu_count()`` is printed): on a small machine more processes mostly share the same CPUs,
so the figures say what the topology costs here, not what more machines would give.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the cluster's process helpers live with the tests

from tests.cluster import LoadBalancer, haproxy_binary, started  # noqa: E402
from tests.conftest import _admin  # noqa: E402
from tests.seaweed import SeaweedFS, free_ports, weed_binary  # noqa: E402
from tests.served import SERVE, Gateway, Worker  # noqa: E402
from tryon_core import accounts, billing  # noqa: E402
from tryon_core.db import create_database  # noqa: E402
from tryon_core.db.schema import generations  # noqa: E402

SAMPLES = ROOT / "samples"


KLING = "kling/kolors-v1-5"
TOPOLOGIES = [(1, 1), (2, 1), (3, 1), (1, 2), (2, 2), (3, 2)]
"""(API replicas, worker processes)."""


def _config(
    folder: Path, *, database: str, redis: str | None, storage: str, fakes: str, workers: int
) -> Path:
    path = folder / f"tryon-{secrets.token_hex(3)}.toml"
    shared = f'[redis]\nurl = "{redis}"\nprefix = "bench-{secrets.token_hex(4)}"\n' if redis else ""
    path.write_text(
        f"""
[database]
url = "{database}"
[storage]
path = "{folder}/files"
signing_secret = "{secrets.token_hex(32)}"
{storage}
{shared}
[jobs]
workers = {workers}
[providers.kling]
enabled = true
base_url = "{fakes}/kling"
access_key = "test-access-key"
secret_key = "test-secret-key"
poll_interval = 0.05
"""
    )
    return path


async def _load(url: str, database: str, jobs: int, concurrency: int) -> tuple[float, float]:
    """Submit ``jobs`` async jobs; (accepted per second, completed per second)."""
    db = create_database(database)
    try:
        async with db.transaction() as conn:
            account = await accounts.create_account(conn, name="bench")
            _, key = await accounts.create_key(conn, account_id=account, name="bench")
            await billing.grant(conn, account, 1000 * jobs)
        person = (SAMPLES / "person.jpg").read_bytes()
        garment = (SAMPLES / "garment.png").read_bytes()
        gate = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {key}"}

        async def submit(client: httpx.AsyncClient) -> None:
            async with gate:
                response = await client.post(
                    "/api/v1/tryon",
                    data={"model": KLING, "mode": "async"},
                    files={
                        "person_images": ("p.jpg", person, "image/jpeg"),
                        "garment_images": ("g.png", garment, "image/png"),
                    },
                    headers=headers,
                )
                assert response.status_code == 202, response.text

        started = time.perf_counter()
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            await asyncio.gather(*(submit(client) for _ in range(jobs)))
        accepted = time.perf_counter() - started
        while True:
            async with db.reading() as conn:
                ended = await conn.scalar(
                    select(func.count()).where(
                        generations.c.account_id == account, generations.c.settled.is_(True)
                    )
                )
            if ended == jobs:
                break
            await asyncio.sleep(0.05)
        completed = time.perf_counter() - started
        return jobs / accepted, jobs / completed
    finally:
        await db.dispose()


async def _run(
    folder: Path,
    config: Path,
    apis: int,
    workers: int,
    *,
    database: str,
    jobs: int,
    concurrency: int,
    haproxy: str,
) -> tuple[float, float]:
    ports = free_ports(apis)
    role = ("--no-workers",) if workers else ()
    replicas = [
        Gateway(config, port, folder / f"api{i}.log", *role, "--port", str(port))
        for i, port in enumerate(ports)
    ]
    runners = [Worker(config, folder / f"w{i}.log") for i in range(workers)]
    balancer = LoadBalancer(haproxy, folder, ports)
    try:
        for process in (*replicas, *runners):
            process.launch()
        await asyncio.gather(*(started(process) for process in (*replicas, *runners)))
        balancer.start()
        await balancer.ready()
        return await _load(balancer.url, database, jobs, concurrency)
    finally:
        balancer.stop()
        for process in (*replicas, *runners):
            process.stop()


async def main(jobs: int, concurrency: int, workers: int) -> None:
    haproxy = haproxy_binary()
    postgres = os.environ.get("TRYON_TEST_POSTGRES_URL")
    redis = os.environ.get("TRYON_TEST_REDIS_URL")
    if not (haproxy and postgres and redis):
        print(
            "bench_cluster: skipped (needs haproxy, TRYON_TEST_POSTGRES_URL, TRYON_TEST_REDIS_URL)"
        )
        return
    folder = Path(tempfile.mkdtemp(prefix="tryon-bench-cluster-"))
    database = await _fresh_database(postgres)
    fakes_port = free_ports(1)[0]
    fakes = subprocess.Popen(  # noqa: ASYNC220  (every provider's fake upstream, on one port)
        [sys.executable, "-c", SERVE, "fakes", "serve", "--port", str(fakes_port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    weed = weed_binary()
    seaweed = SeaweedFS(weed, folder / "weed") if weed else None
    try:
        storage = ""
        if seaweed is not None:
            (folder / "weed").mkdir()
            seaweed.start()
            storage = 'backend = "s3"\n' + seaweed.storage_toml(seaweed.new_bucket())
        await _until_up(f"http://127.0.0.1:{fakes_port}/kling/_fake/faults")
        url = f"http://127.0.0.1:{fakes_port}"
        print(
            f"bench_cluster: {jobs} async jobs ({KLING} on its fake), {concurrency} clients, "
            f"[jobs] workers = {workers}, files on {'SeaweedFS' if seaweed else 'local disk'}, "
            f"{os.cpu_count()} CPUs"
        )
        parts = {"database": database, "storage": storage, "fakes": url, "workers": workers}
        single = _config(folder, redis=None, **parts)  # type: ignore[arg-type]
        shared = _config(folder, redis=redis, **parts)  # type: ignore[arg-type]
        common = {"database": database, "jobs": jobs, "concurrency": concurrency}
        base = await _run(folder, single, 1, 0, haproxy=haproxy, **common)  # type: ignore[arg-type]
        print(f"  {'one process (serve)':24} accepted {base[0]:7.1f}/s  completed {base[1]:7.1f}/s")
        for apis, runners in TOPOLOGIES:
            got = await _run(folder, shared, apis, runners, haproxy=haproxy, **common)  # type: ignore[arg-type]
            print(
                f"  {f'{apis} API + {runners} worker':24} accepted {got[0]:7.1f}/s "
                f"({got[0] / base[0]:.2f}x)  completed {got[1]:7.1f}/s ({got[1] / base[1]:.2f}x)"
            )
    finally:
        fakes.terminate()
        fakes.wait()
        if seaweed is not None:
            seaweed.stop()
        await _admin(postgres, f'DROP DATABASE IF EXISTS "{database.rsplit("/", 1)[1]}"')


async def _fresh_database(admin_url: str) -> str:
    name = f"bench_cluster_{secrets.token_hex(4)}"
    await _admin(admin_url, f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


async def _until_up(url: str) -> None:
    async with httpx.AsyncClient(timeout=1) as client:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.concurrency, args.workers))
