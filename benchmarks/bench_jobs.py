"""Async jobs: how fast the gateway accepts them (the 202) and works through them.

Submits N async jobs at a given concurrency against an instant scripted model on a real
uvicorn server, then waits until every job has ended. Prints the submission latency (what a
client waits for its 202: intake, storing the inputs, reservation, the job row) and the
end-to-end throughput of the worker pool. Asserts nothing.

    uv run python benchmarks/bench_jobs.py [--jobs 200] [--concurrency 8] [--workers 4]
                                           [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from tryon_core import accounts, billing
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.db import create_database
from tryon_core.db.schema import generations
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.server import serve_app

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


async def main(jobs: int, concurrency: int, workers: int, database: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="tryon-bench-jobs-"))
    url = database or f"sqlite+aiosqlite:///{folder}/bench.db"
    settings = parse_settings(
        f'[database]\nurl = "{url}"\n[storage]\npath = "{folder}/files"\n'
        f"[jobs]\nworkers = {workers}\n[providers.scripted]\nenabled = true\n"
    )
    app = create_app(settings, extra_plugins=[ScriptedProvider()], load_entry_points=False)
    async with serve_app(app) as base:
        db = create_database(url)
        async with db.transaction() as conn:
            account = await accounts.create_account(conn)
            _, key = await accounts.create_key(conn, account_id=account, name="bench")
            await billing.grant(conn, account, 10 * jobs)
        body = {
            "model": "scripted/beta",
            "mode": "async",
            "person_images": "data:image/jpeg;base64,"
            + base64.b64encode((SAMPLES / "person.jpg").read_bytes()).decode(),
            "garment_images": "data:image/png;base64,"
            + base64.b64encode((SAMPLES / "garment.png").read_bytes()).decode(),
        }
        latencies: list[float] = []
        remaining = list(range(jobs))
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as http:

            async def submitter() -> None:
                while remaining:
                    remaining.pop()
                    started = time.perf_counter()
                    response = await http.post("/api/v1/tryon", json=body)
                    assert response.status_code == 202, response.text
                    latencies.append(time.perf_counter() - started)

            began = time.perf_counter()
            await asyncio.gather(*(submitter() for _ in range(concurrency)))
            submitted = time.perf_counter() - began
            while True:
                async with db.reading() as conn:
                    open_jobs = await conn.scalar(
                        select(func.count())
                        .select_from(generations)
                        .where(generations.c.status.in_(("queued", "processing")))
                    )
                if not open_jobs:
                    break
                await asyncio.sleep(0.02)
            finished = time.perf_counter() - began
        await db.dispose()

    ms = sorted(x * 1000 for x in latencies)
    print(
        f"async jobs, {url.split(':', 1)[0]}, {jobs} jobs, concurrency {concurrency}, "
        f"{workers} workers"
    )
    print(f"  accepted    {jobs / submitted:8.1f} jobs/s")
    print(f"  202 p50     {statistics.median(ms):8.1f} ms")
    print(f"  202 p95     {ms[int(0.95 * (len(ms) - 1))]:8.1f} ms")
    print(f"  all ended   {finished:8.2f} s ({jobs / finished:.1f} jobs/s end to end)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.concurrency, args.workers, args.database))
