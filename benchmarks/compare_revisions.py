"""This checkout's gateway against another revision's, side by side, in paired alternation.

The build machine's speed drifts by ±20% within minutes, more than most changes are worth; two
runs one after the other compare the weather. This starts both gateways at once in front of
one fake upstream (``peer_upstream.py``), each on its own database (SQLite, or with
``--database postgres`` a fresh one each on the PostgreSQL server of ``--postgres-url``), and
alternates short blocks between them (A B, then B A, ...). Each block gives CPU ms per
request (the server's user + system time over a burst at ``--concurrency`` in flight); the
figure to read is the median of the per-pair ratios B / A, with the sequential p50 of each if
``--sequential``.

A is ``--base REV``: git checks it out into ``var/bench/rev-<REV>`` (a worktree, made once)
and its ``src/`` goes first on ``PYTHONPATH``: the core is that revision's, the plugins this
checkout's. B is this checkout. Asserts nothing; not a test.

    uv run python benchmarks/compare_revisions.py --base HEAD~1 [--payload tiny-multipart]
        [--blocks 10] [--requests 300] [--concurrency 32] [--sequential 50]
        [--upstream-delay 0.5]  (a slow upstream: many calls in flight)
        [--database postgres] [--postgres-url postgresql+asyncpg://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import time
from pathlib import Path

import httpx
import peer_servers
import proc_stats
from peer_payloads import Request, payloads

UPSTREAM_PORT, A_PORT, B_PORT = 18580, 18590, 18591


def _checkout(revision: str) -> Path:
    """``revision``'s tree under var/bench/ (made once per commit), its ``src`` folder."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"],
        cwd=peer_servers.ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    folder = peer_servers.BENCH_VAR / f"rev-{commit[:12]}"
    if not folder.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(folder), commit],
            cwd=peer_servers.ROOT,
            check=True,
            capture_output=True,
        )
    return folder / "src"


async def _burst(url: str, request: Request, count: int, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                reply = await client.post(
                    url + request.path, content=request.body, headers=request.headers
                )
                if reply.status_code != 200:
                    raise SystemExit(f"{url}: {reply.status_code} {reply.text[:300]}")

        await asyncio.gather(*(one() for _ in range(count)))


async def _sequential_p50(url: str, request: Request, count: int) -> float:
    times = []
    async with httpx.AsyncClient(timeout=60) as client:
        for _ in range(count):
            started = time.perf_counter()
            await client.post(url + request.path, content=request.body, headers=request.headers)
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the revision A (git), e.g. HEAD~1")
    parser.add_argument("--payload", default="tiny-multipart", choices=sorted(payloads()))
    parser.add_argument("--blocks", type=int, default=10, help="blocks per gateway")
    parser.add_argument("--requests", type=int, default=300, help="requests per block")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sequential", type=int, default=0, help="sequential requests per block")
    parser.add_argument(
        "--upstream-delay", type=float, default=0.0, help="seconds the fake takes to answer"
    )
    peer_servers.add_database_options(parser, made="databases tryon_compare_a and _b")
    args = parser.parse_args()

    base = _checkout(args.base)
    payload = payloads()[args.payload]
    run = peer_servers.BENCH_VAR / f"compare-{int(time.time())}"
    with contextlib.ExitStack() as stack:
        if args.database == "postgres":
            databases = {
                name: stack.enter_context(
                    peer_servers.postgres_database(
                        args.postgres_url, f"tryon_compare_{name.lower()}"
                    )
                )
                for name in ("A", "B")
            }
        else:
            databases = {name: f"sqlite+aiosqlite:///{run}/{name}.db" for name in ("A", "B")}
        servers = stack.enter_context(peer_servers.Servers(run))
        upstream = servers.upstream(UPSTREAM_PORT, delay=args.upstream_delay).url
        gateways = {
            name: servers.tryon(
                port,
                upstream,
                databases[name],
                credits=10**12,
                name=name,
                env=env,
            )
            for name, port, env in (
                ("A", A_PORT, {"PYTHONPATH": str(base)}),
                ("B", B_PORT, {}),
            )
        }
        requests = {
            name: payload.request("tryon").with_auth(key) for name, (_, key) in gateways.items()
        }
        cpu: dict[str, list[float]] = {"A": [], "B": []}
        latency: dict[str, list[float]] = {"A": [], "B": []}
        for name, (server, _) in gateways.items():  # warm-up: connections, caches
            asyncio.run(_burst(server.url, requests[name], 100, args.concurrency))
        for block in range(args.blocks):
            for name in ("A", "B") if block % 2 == 0 else ("B", "A"):
                server, _ = gateways[name]
                before = proc_stats.cpu_seconds(server.pid)
                asyncio.run(_burst(server.url, requests[name], args.requests, args.concurrency))
                spent = proc_stats.cpu_seconds(server.pid) - before
                cpu[name].append(1000 * spent / args.requests)
                if args.sequential:
                    p50 = asyncio.run(_sequential_p50(server.url, requests[name], args.sequential))
                    latency[name].append(p50)
            print(f"block {block + 1}: CPU ms/request A {cpu['A'][-1]:.2f}  B {cpu['B'][-1]:.2f}")
    ratios = [b / a for a, b in zip(cpu["A"], cpu["B"], strict=True)]
    print(
        f"\n{args.payload}, A = {args.base} ({base.parent.name}), B = this checkout; "
        f"{args.blocks} blocks of {args.requests} at {args.concurrency} in flight; "
        f"{proc_stats.load_average()}"
    )
    print(
        f"CPU ms/request, median: A {statistics.median(cpu['A']):.2f}  "
        f"B {statistics.median(cpu['B']):.2f};  B / A, median of the pairs: "
        f"{statistics.median(ratios):.3f} (pairs from {min(ratios):.2f} to {max(ratios):.2f})"
    )
    if args.sequential:
        print(
            f"sequential p50 ms, median: A {statistics.median(latency['A']):.2f}  "
            f"B {statistics.median(latency['B']):.2f}"
        )


if __name__ == "__main__":
    main()
