"""Gateway overhead: native try-on requests against an instant scripted model.

Measures what the gateway itself costs per request (auth, intake of two data-URL images,
planning, reservation, attempt records, storing the result, settlement) on a real uvicorn
server on 127.0.0.1. Prints figures; asserts nothing.

    uv run python benchmarks/bench_gateway.py [--requests 200] [--concurrency 8] [--database URL]
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

from tryon_core import accounts, billing
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.db import create_database
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.server import serve_app

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


async def main(requests: int, concurrency: int, database: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="tryon-bench-"))
    url = database or f"sqlite+aiosqlite:///{folder}/bench.db"
    settings = parse_settings(
        f'[database]\nurl = "{url}"\n[storage]\npath = "{folder}/files"\n'
        "[providers.scripted]\nenabled = true\n"
    )
    app = create_app(settings, extra_plugins=[ScriptedProvider()], load_entry_points=False)
    async with serve_app(app) as base:
        await _drive(base, url, requests, concurrency)


async def _drive(base: str, url: str, requests: int, concurrency: int) -> None:
    db = create_database(url)
    async with db.transaction() as conn:
        account = await accounts.create_account(conn)
        _, key = await accounts.create_key(conn, account_id=account, name="bench")
        await billing.grant(conn, account, 10 * requests)
    await db.dispose()

    body = {
        "model": "scripted/beta",
        "person_images": "data:image/jpeg;base64,"
        + base64.b64encode((SAMPLES / "person.jpg").read_bytes()).decode(),
        "garment_images": "data:image/png;base64,"
        + base64.b64encode((SAMPLES / "garment.png").read_bytes()).decode(),
    }
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as http:
        await http.post("/api/v1/tryon", json=body)  # warm up

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                started = time.perf_counter()
                response = await http.post("/api/v1/tryon", json=body)
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began

    latencies.sort()
    ms = [x * 1000 for x in latencies]
    print(f"gateway, {url.split(':', 1)[0]}, {requests} requests, concurrency {concurrency}")
    print(f"  throughput  {requests / elapsed:8.1f} req/s")
    print(f"  latency p50 {statistics.median(ms):8.1f} ms")
    print(f"  latency p95 {ms[int(0.95 * (len(ms) - 1))]:8.1f} ms")
    print(f"  latency max {ms[-1]:8.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency, args.database))
