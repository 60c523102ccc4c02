"""Job pickup: from the ``202`` to a worker starting the job, with the in-process dispatcher and
with SAQ on Redis across processes.

Submits async jobs one at a time (each worker free) to a real uvicorn server against the Kling
fake, and measures from the moment the client has the ``202`` to the job's first attempt
starting (the claim, reading the inputs, the attempt's row: an upper bound of the claim).
Setups: ``tryon serve`` alone (in-process dispatch); ``serve --no-workers`` in this process and
one ``tryon worker`` subprocess sharing Redis (SAQ). Prints p50/p95. Asserts nothing.

    uv run python benchmarks/bench_queue.py [--jobs 50] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from redis.asyncio import Redis
from sqlalchemy import select
from tryon_kling.fake import TEST_ACCESS_KEY, TEST_SECRET_KEY
from tryon_kling.fake import create_app as kling_fake

from tryon_core import accounts, billing
from tryon_core.api import create_app
from tryon_core.config import Settings, parse_settings
from tryon_core.db import create_database
from tryon_core.db.schema import attempts
from tryon_core.ids import as_utc
from tryon_core.testing.server import serve_app, serve_app_in_thread

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
RUN = "from tryon_core.cli import main; raise SystemExit(main())"


def _config(folder: Path, fake_url: str, redis: str | None, prefix: str) -> str:
    table = f'[redis]\nurl = "{redis}"\nprefix = "{prefix}"\n' if redis else ""
    return f"""
[database]
url = "sqlite+aiosqlite:///{folder}/bench.db"
[storage]
path = "{folder}/files"
signing_secret = "bench-secret-long-enough-for-replicas"
[jobs]
workers = 2
[providers.kling]
enabled = true
base_url = "{fake_url}"
access_key = "{TEST_ACCESS_KEY}"
secret_key = "{TEST_SECRET_KEY}"
poll_interval = 0.05
{table}"""


@contextlib.contextmanager
def _worker(config: Path, log: Path) -> Iterator[None]:
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", RUN, "worker", "--config", str(config)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        while "running up to" not in log.read_text():
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _pickups(settings: Settings, *, workers: bool, jobs: int) -> list[float]:
    app = create_app(settings, workers=workers)
    body = {
        "model": "kling/kolors-v1-5",
        "mode": "async",
        "person_images": "data:image/jpeg;base64,"
        + base64.b64encode((SAMPLES / "person.jpg").read_bytes()).decode(),
        "garment_images": "data:image/png;base64,"
        + base64.b64encode((SAMPLES / "garment.png").read_bytes()).decode(),
    }
    db = create_database(settings.database.url)
    pickups: list[float] = []
    async with serve_app(app) as base:
        async with db.transaction() as conn:
            account = await accounts.create_account(conn)
            _, key = await accounts.create_key(conn, account_id=account, name="bench")
            await billing.grant(conn, account, 10 * jobs)
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as http:
            for _ in range(jobs):
                response = await http.post("/api/v1/tryon", json=body)
                accepted = time.time()
                assert response.status_code == 202, response.text
                job_id = response.json()["jobId"]
                while True:
                    async with db.reading() as conn:
                        started = await conn.scalar(
                            select(attempts.c.started_at).where(attempts.c.generation_id == job_id)
                        )
                    if started is not None:
                        break
                    await asyncio.sleep(0.005)
                pickups.append(max(0.0, as_utc(started).timestamp() - accepted))
                while True:  # the next job finds every worker free
                    status = (await http.get(f"/api/v1/tryon/{job_id}")).json()["status"]
                    if status not in ("queued", "processing"):
                        break
                    await asyncio.sleep(0.01)
    await db.dispose()
    return pickups


def _print(name: str, pickups: list[float]) -> None:
    ms = sorted(x * 1000 for x in pickups)
    print(
        f"  {name:34} p50 {statistics.median(ms):7.1f} ms   "
        f"p95 {ms[int(0.95 * (len(ms) - 1))]:7.1f} ms   ({len(ms)} jobs)"
    )


async def _redis_answers(url: str) -> bool:
    client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


async def _forget(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        async for key in client.scan_iter(match=f"*{prefix}*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


async def main(jobs: int, redis: str) -> None:
    print("job pickup: from the 202 to the job's first attempt starting")
    with serve_app_in_thread(kling_fake(processing_polls=0)) as fake_url:
        folder = Path(tempfile.mkdtemp(prefix="tryon-bench-queue-"))
        settings = parse_settings(_config(folder, fake_url, None, ""))
        _print(
            "in-process dispatch (tryon serve)", await _pickups(settings, workers=True, jobs=jobs)
        )

        if not await _redis_answers(redis):
            print(f"  SAQ across processes: skipped (no Redis at {redis})")
            return
        folder = Path(tempfile.mkdtemp(prefix="tryon-bench-queue-"))
        prefix = f"bench-{secrets.token_hex(4)}"
        config = folder / "tryon.toml"
        config.write_text(_config(folder, fake_url, redis, prefix))
        settings = parse_settings(config.read_text())
        try:
            with _worker(config, folder / "worker.log"):
                pickups = await _pickups(settings, workers=False, jobs=jobs)
            _print("SAQ: serve --no-workers + worker", pickups)
        finally:
            await _forget(redis, prefix)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument(
        "--redis",
        default=os.environ.get("TRYON_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis for the SAQ setup (default: $TRYON_TEST_REDIS_URL, else the local one)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.redis))
