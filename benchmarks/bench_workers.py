"""``tryon serve --workers N``: requests per second with 1 and 2 processes on one port.

Starts the fake upstream (``peer_upstream.py``), then for each N one ``tryon serve --workers
N`` (SQLite, or a fresh database on ``--postgres``; JSON logs) and sends it ``--requests``
try-ons of one payload (default: two small PNGs, multipart), ``--concurrency`` in flight, in
turn from ``--accounts`` accounts, after a warm-up. Prints for each N: requests/s,
latency p50 and p99, CPU ms per request (the server's whole process tree, from /proc) and how
many requests each process served (the ``pid`` of its log lines), then the ratio of each
N's requests/s to one process's. Every process shares this machine's cores with the client and
the fake (and PostgreSQL): the machine's busy CPUs are printed; more processes than free cores
cannot scale.

By default every request opens a connection of its own (``Connection: close``), as clients
behind a load balancer or one-shot scripts do, so the spread across processes is the one the
port gives new connections; ``--keep-alive`` reuses ``--concurrency`` connections instead.
Asserts nothing; not a test.

    uv run python benchmarks/bench_workers.py [--workers 1,2] [--requests 400]
        [--concurrency 32] [--payload tiny-multipart] [--keep-alive] [--port 18196]
        [--upstream-port 18197] [--postgres postgresql+asyncpg://user@host/db]

On SQLite every process writes one file, one writer at a time: the database, not the CPUs,
then bounds what more processes add (docs/deploy.md). PostgreSQL shows the processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import peer_servers
import proc_stats
from peer_payloads import Request, payloads

from tryon_core import accounts, billing
from tryon_core.db import create_database

SERVED = "POST /api/v1/"


def _start(
    servers: peer_servers.Servers,
    upstream: str,
    port: int,
    workers: int,
    postgres: str | None,
    keys: int,
) -> tuple[list[str], contextlib.AbstractContextManager[str]]:
    """``tryon serve --workers N`` on ``port`` with a fresh database (SQLite, or one made on
    the ``postgres`` server); ``keys`` keys with credits, and the database (drop it when
    done)."""
    folder = servers.folder
    config = folder / f"tryon-{workers}.toml"
    made: contextlib.AbstractContextManager[str] = contextlib.nullcontext(
        f"sqlite+aiosqlite:///{folder}/tryon-{workers}.db"
    )
    if postgres:
        made = peer_servers.postgres_database(postgres, f"bench_workers_{workers}")
    database = made.__enter__()
    config.write_text(peer_servers.tryon_config(folder, upstream, database, port))
    tryon = [str(Path(sys.executable).with_name("tryon")), "--config", str(config)]
    subprocess.run([*tryon, "db", "upgrade"], check=True, capture_output=True)
    made_keys = asyncio.run(_keys(database, keys))
    argv = [*tryon, "serve", "--workers", str(workers), "--log-format", "json"]
    servers.start(f"tryon-{workers}", argv, f"http://127.0.0.1:{port}", "/healthz")
    return made_keys, made


async def _keys(url: str, count: int) -> list[str]:
    """``count`` inference keys, each of an account of its own holding plenty of credits."""
    database = create_database(url)
    made = []
    try:
        async with database.transaction() as conn:
            for number in range(count):
                account_id = await accounts.create_account(conn, name=f"bench-{number}")
                _, key = await accounts.create_key(conn, account_id=account_id, name="bench")
                await billing.grant(conn, account_id, 10**12)
                made.append(key)
    finally:
        await database.dispose()
    return made


def _served(log: Path) -> Counter[int]:
    """Requests served per process, from the JSON log."""
    counts: Counter[int] = Counter()
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("message", "").startswith(SERVED):
                counts[entry["pid"]] += 1
    return counts


async def _load(
    base: str, request: Request, keys: list[str], total: int, concurrency: int, *, keep: bool
) -> list[float | str]:
    """``total`` requests, ``concurrency`` in flight (lane i sends with key i); each one's
    latency (s), or an error."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results: list[float | str] = []
    queue = iter(range(total))
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def lane(key: str) -> None:
            authed = request.with_auth(key)
            headers = authed.headers if keep else {**authed.headers, "connection": "close"}
            for _ in queue:
                began = time.perf_counter()
                try:
                    reply = await client.post(request.path, content=request.body, headers=headers)
                except httpx.HTTPError as error:
                    results.append(f"{type(error).__name__}: {error}")
                    continue
                if reply.status_code != 200 or request.marker not in reply.content:
                    results.append(f"{reply.status_code}: {reply.text[:160]}")
                else:
                    results.append(time.perf_counter() - began)

        await asyncio.gather(*(lane(keys[n % len(keys)]) for n in range(concurrency)))
    return results


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine() -> float:
    """CPU seconds every process of the machine used so far (/proc/stat: all but idle, iowait)."""
    with open("/proc/stat") as f:
        ticks = [int(field) for field in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _measure(args: argparse.Namespace, servers: peer_servers.Servers, upstream: str) -> dict:
    figures: dict[int, float] = {}
    request = payloads()[args.payload].request("tryon")
    for workers in (int(n) for n in args.workers.split(",")):
        keys, database = _start(servers, upstream, args.port, workers, args.postgres, args.accounts)
        server = servers.started[-1]
        base = f"http://127.0.0.1:{args.port}"
        asyncio.run(
            _load(base, request, keys, 4 * args.concurrency, args.concurrency, keep=args.keep_alive)
        )
        log = servers.folder / f"tryon-{workers}.log"
        before_served, cpu = _served(log), proc_stats.cpu_seconds(server.pid)
        others = _client_cpu(), proc_stats.cpu_seconds(servers.started[0].pid), _machine()
        began = time.perf_counter()
        results = asyncio.run(
            _load(base, request, keys, args.requests, args.concurrency, keep=args.keep_alive)
        )
        wall = time.perf_counter() - began
        cpu = proc_stats.cpu_seconds(server.pid) - cpu
        client = _client_cpu() - others[0]
        fake = proc_stats.cpu_seconds(servers.started[0].pid) - others[1]
        machine = _machine() - others[2]
        time.sleep(0.5)  # the last log lines
        spread = sorted((_served(log) - before_served).values(), reverse=True)
        latencies = [r for r in results if isinstance(r, float)]
        errors = [r for r in results if isinstance(r, str)]
        figures[workers] = len(latencies) / wall
        print(
            f"--workers {workers}: {figures[workers]:6.1f} req/s  "
            f"p50 {_quantile(latencies, 0.5) * 1000:6.1f} ms  "
            f"p99 {_quantile(latencies, 0.99) * 1000:6.1f} ms  "
            f"CPU {cpu * 1000 / max(1, len(results)):5.1f} ms/request  "
            f"served per process {spread}  RSS {proc_stats.rss_mb(server.pid):.0f} MB; "
            f"CPUs busy: server {cpu / wall:.2f}, client {client / wall:.2f}, "
            f"fake {fake / wall:.2f}, machine {machine / wall:.2f} of {os.cpu_count()}"
            + (f"  {len(errors)} errors, first: {errors[0]}" if errors else ""),
            flush=True,
        )
        server.process.terminate()
        server.process.wait(timeout=60)
        servers.started.remove(server)
        database.__exit__(None, None, None)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="process counts to compare, in order")
    parser.add_argument("--requests", type=int, default=400, help="measured requests per run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--payload", default="tiny-multipart", choices=sorted(payloads()))
    parser.add_argument(
        "--keep-alive", action="store_true", help="reuse connections (default: one a request)"
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("TRYON_BENCH_POSTGRES_URL"),
        help="a PostgreSQL server (postgresql+asyncpg://...) to make a fresh database on, "
        "instead of SQLite (default: $TRYON_BENCH_POSTGRES_URL)",
    )
    parser.add_argument(
        "--accounts",
        type=int,
        default=32,
        help="accounts (one key each) the lanes take turns with: one account alone makes its "
        "balance row the bottleneck, whatever the processes",
    )
    parser.add_argument("--port", type=int, default=18196, help="the gateway's port")
    parser.add_argument("--upstream-port", type=int, default=18197, help="the fake's port")
    args = parser.parse_args()
    folder = peer_servers.BENCH_VAR / f"workers-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    print(
        f"{datetime.now(UTC):%Y-%m-%d}: {args.payload}, {args.requests} requests, "
        f"{args.concurrency} in flight, {'PostgreSQL' if args.postgres else 'SQLite'}, "
        f"{'keep-alive' if args.keep_alive else 'a connection per request'}; "
        f"{proc_stats.load_average()}",
        flush=True,
    )
    with peer_servers.Servers(folder) as servers:
        upstream = servers.upstream(args.upstream_port)
        figures = _measure(args, servers, upstream.url)
    first = next(iter(figures.values()))
    print("  ".join(f"{n} processes: {rate / first:.2f}x" for n, rate in figures.items()))


if __name__ == "__main__":
    main()
