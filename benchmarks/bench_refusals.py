"""Refusals cost nothing: a key that cannot pay, sending huge images, gets its 402 at once.

An outside probe sent requests with five 40-megapixel PNGs (a few kilobytes each) from a key
with no credits: each was decoded before its 402 (5.4 s), and over ~165 such requests the
process grew from 400 MB to 1.5 GB. This sends the same on a real uvicorn server in this
process and prints the 402 latency and the process's resident memory before and after.
Asserts nothing.

    uv run python benchmarks/bench_refusals.py [--requests 165] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import resource
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

from tryon_core import accounts
from tryon_core.api import create_app
from tryon_core.config import parse_settings
from tryon_core.db import create_database
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.server import serve_app


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _huge_png() -> str:
    buffer = io.BytesIO()
    Image.new("L", (6324, 6324), 200).save(buffer, format="PNG", optimize=True)  # 40 MP
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def main(requests: int, concurrency: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="tryon-bench-refusals-"))
    url = f"sqlite+aiosqlite:///{folder}/bench.db"
    settings = parse_settings(
        f'[database]\nurl = "{url}"\n[storage]\npath = "{folder}/files"\n'
        "[server]\nmax_body_bytes = 67108864\n[providers.scripted]\nenabled = true\n"
    )
    app = create_app(settings, extra_plugins=[ScriptedProvider()], load_entry_points=False)
    huge = _huge_png()
    body = {"model": "scripted/gamma", "person_images": huge, "garment_images": [huge] * 4}
    async with serve_app(app) as base:
        db = create_database(url)
        async with db.transaction() as conn:
            account = await accounts.create_account(conn)
            _, key = await accounts.create_key(conn, account_id=account, name="broke")
        await db.dispose()
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            await http.get("/readyz")
            before = _rss_mb()
            latencies: list[float] = []
            statuses: dict[int, int] = {}
            queue = list(range(requests))

            async def client() -> None:
                while queue:
                    queue.pop()
                    started = time.perf_counter()
                    answer = await http.post("/api/v1/tryon", json=body, headers=headers)
                    latencies.append(time.perf_counter() - started)
                    statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
            after = _rss_mb()
    latencies.sort()
    print(f"refusals: {requests} requests of five 40-megapixel PNGs, concurrency {concurrency}")
    print(f"  statuses {statuses}, {requests / elapsed:.1f} req/s")
    print(
        f"  latency p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95) - 1] * 1000:.1f} ms"
    )
    print(f"  resident memory (server and client) {before:.0f} MB -> {after:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=165)
    parser.add_argument("--concurrency", type=int, default=4)
    options = parser.parse_args()
    asyncio.run(main(options.requests, options.concurrency))
