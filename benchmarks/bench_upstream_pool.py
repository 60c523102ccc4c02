"""What an upstream call costs the gateway's HTTP client as more of them are in flight.

Try-on upstreams answer in seconds, so a busy gateway holds a hundred calls in flight and more
waiting. httpcore's pool runs an assignment pass each time a call starts and each time one
ends, in O(N² + N x M) for N connections and M queued calls; ``tryon_core.connection_pool``
makes that pass linear. This runs one client (uvloop, the gateway's ``http_transport``, no
connection limit) against the peer benchmark's fake upstream answering after ``--delay``
seconds, at each ``--in-flight`` level, once with httpcore's own pool and once with the linear
one, and prints the client's CPU per call, calls per second and calls that failed. Asserts
nothing.

    uv run python benchmarks/bench_upstream_pool.py [--delay 0.05] [--in-flight 16 128 512]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpcore
import httpx
import peer_servers

from tryon_core.asyncio_network import http_transport

PORT = 18781


async def _calls(pool_kind: str, in_flight: int, count: int) -> tuple[float, float, int]:
    """CPU microseconds per call, calls per second, and how many calls failed (a starved
    client reuses connections the fake has meanwhile closed as idle)."""
    transport = http_transport(limits=httpx.Limits(max_connections=None))
    if pool_kind == "httpcore":
        transport._pool.__class__ = httpcore.AsyncConnectionPool  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{PORT}/v1/images/edits"
    body, headers = b"x" * 4600, {"content-type": "multipart/form-data; boundary=x"}
    failed = 0
    async with httpx.AsyncClient(transport=transport, timeout=60) as client:
        gate = asyncio.Semaphore(in_flight)

        async def one() -> None:
            nonlocal failed
            async with gate:
                try:
                    reply = await client.post(url, content=body, headers=headers)
                    reply.raise_for_status()
                except httpx.TransportError:
                    failed += 1

        await asyncio.gather(*(one() for _ in range(in_flight)))  # connections opened
        failed = 0
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one() for _ in range(count)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - started
    return 1e6 * cpu / count, count / wall, failed


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
    with peer_servers.Servers(peer_servers.BENCH_VAR / "upstream-pool") as servers:
        servers.upstream(PORT, delay=args.delay)  # started, and answering /health
        print(f"fake upstream answering after {args.delay * 1000:.0f} ms; one client")
        print(f"{'in flight':>9}  {'pool':<9} {'CPU us/call':>11} {'calls/s':>8} {'failed':>7}")
        for in_flight in args.in_flight:
            for kind in ("httpcore", "linear"):
                cpu, rate, failed = run(_calls(kind, in_flight, max(2000, 8 * in_flight)))
                print(
                    f"{in_flight:>9}  {kind:<9} {cpu:>11.0f} {rate:>8.0f} {failed:>7}", flush=True
                )


if __name__ == "__main__":
    main()
