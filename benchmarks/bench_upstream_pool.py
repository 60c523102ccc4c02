"""What an upstream call costs the gateway's HTTP client as more of them are in flight.

Try-on upstreams answer in seconds, so a busy gateway holds a hundred calls in flight and more
waiting. httpcore's pool runs an assignment pass each time a call starts and each time one
ends, in O(N² + N x M) for N connections and M queued calls; ``tryon_core.connection_pool``
makes that pass linear. This runs one client (uvloop, the gateway's ``http_transport``, no
connection limit) against the peer benchmark's fake upstream answering after ``--delay``
seconds, at each ``--in-flight`` level, once with httpcore's own pool and once with the linear
one, and prints the client's CPU per call and calls per second. Asserts nothing.

    uv run python benchmarks/bench_upstream_pool.py [--delay 0.05] [--in-flight 16 128 512]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpcore
import httpx

from tryon_core.asyncio_network import http_transport

PORT = 18781


async def _calls(pool_kind: str, in_flight: int, count: int) -> tuple[float, float]:
    transport = http_transport(limits=httpx.Limits(max_connections=None))
    if pool_kind == "httpcore":
        transport._pool.__class__ = httpcore.AsyncConnectionPool  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{PORT}/v1/images/edits"
    body, headers = b"x" * 4600, {"content-type": "multipart/form-data; boundary=x"}
    async with httpx.AsyncClient(transport=transport, timeout=60) as client:
        gate = asyncio.Semaphore(in_flight)

        async def one() -> None:
            async with gate:
                reply = await client.post(url, content=body, headers=headers)
                reply.raise_for_status()

        await asyncio.gather(*(one() for _ in range(in_flight)))  # connections opened
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one() for _ in range(count)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - started
    return 1e6 * cpu / count, count / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=0.05, help="the upstream's answer time")
    parser.add_argument("--in-flight", type=int, nargs="+", default=[16, 128, 512])
    args = parser.parse_args()
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    fake = Path(__file__).with_name("peer_upstream.py")
    argv = [sys.executable, str(fake), "--port", str(PORT), "--delay", str(args.delay)]
    upstream = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{PORT}/health", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        print(f"fake upstream answering after {args.delay * 1000:.0f} ms; one client")
        print(f"{'in flight':>9}  {'pool':<9} {'CPU us/call':>11} {'calls/s':>8}")
        for in_flight in args.in_flight:
            for kind in ("httpcore", "linear"):
                cpu, rate = run(_calls(kind, in_flight, max(2000, 8 * in_flight)))
                print(f"{in_flight:>9}  {kind:<9} {cpu:>11.0f} {rate:>8.0f}")
    finally:
        upstream.terminate()
        upstream.wait()


if __name__ == "__main__":
    main()
