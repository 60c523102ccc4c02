"""Side by side: this gateway and LiteLLM's proxy in front of one fake upstream, one process each.

Starts the fake (``peer_upstream.py``), LiteLLM's proxy (installed once into
``var/bench/litellm-venv``; no database) and ``tryon serve`` (SQLite, or ``--database
postgres``), then for each round, each payload and each target in turn (direct to the fake,
LiteLLM, this gateway: alternated, so that both gateways share the machine's weather) runs a
warm-up, N sequential requests and a burst at C in flight. Prints the issue's table: added
latency (sequential p50 minus direct), requests/s in the burst, CPU ms per request of the
server process (utime + stime from /proc, over both phases), the ratios ours/LiteLLM, and
RSS idle, right after the runs and after a short rest. Figures are medians over the rounds.
Asserts nothing; not a test.

    uv run python benchmarks/bench_peer.py [--rounds 2] [--requests 100] [--burst 320]
        [--concurrency 32] [--payloads tiny-multipart,big-chat] [--database postgres]
        [--no-litellm] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import peer_servers
import proc_stats
from peer_payloads import Payload, Request, payloads

UPSTREAM_PORT, LITELLM_PORT, TRYON_PORT = 18080, 14000, 18100
REST_SECONDS = 2.0
"""A short rest after the runs, then RSS again: what each process keeps once a burst is over."""


@dataclass
class Block:
    """One (payload, target) block of one round."""

    p50_ms: float
    rps: float
    cpu_ms: float | None
    errors: int
    first_error: str = ""
    database_cpu_ms: float | None = None
    """The PostgreSQL server's CPU per request (this gateway on PostgreSQL only)."""


async def _send(client: httpx.AsyncClient, base: str, request: Request) -> tuple[float, str]:
    """Latency in ms, and an error text ("" on success)."""
    started = time.perf_counter()
    try:
        reply = await client.post(
            base + request.path, content=request.body, headers=request.headers
        )
    except httpx.HTTPError as error:
        return 0.0, f"{type(error).__name__}: {error}"
    elapsed = (time.perf_counter() - started) * 1000
    if reply.status_code != 200 or request.marker not in reply.content:
        return elapsed, f"{reply.status_code}: {reply.text[:160]}"
    return elapsed, ""


async def _block(
    client: httpx.AsyncClient,
    base: str,
    request: Request,
    *,
    pid: int | None,
    sequential: int,
    burst: int,
    concurrency: int,
    database: bool = False,
) -> Block:
    for _ in range(5):  # warm up
        await _send(client, base, request)
    cpu_before = proc_stats.cpu_seconds(pid) if pid else 0.0
    database_before = proc_stats.named_cpu_seconds("postgres") if database else 0.0
    latencies, errors = [], []
    for _ in range(sequential):
        ms, error = await _send(client, base, request)
        (errors.append(error) if error else latencies.append(ms))
    gate = asyncio.Semaphore(concurrency)

    async def one() -> str:
        async with gate:
            return (await _send(client, base, request))[1]

    began = time.perf_counter()
    burst_errors = [e for e in await asyncio.gather(*(one() for _ in range(burst))) if e]
    wall = time.perf_counter() - began
    errors += burst_errors
    cpu_ms = database_cpu_ms = None
    if pid:
        cpu_ms = (proc_stats.cpu_seconds(pid) - cpu_before) * 1000 / (sequential + burst)
    if database:
        spent = proc_stats.named_cpu_seconds("postgres") - database_before
        database_cpu_ms = spent * 1000 / (sequential + burst)
    return Block(
        p50_ms=statistics.median(latencies) if latencies else float("nan"),
        rps=(burst - len(burst_errors)) / wall,
        cpu_ms=cpu_ms,
        errors=len(errors),
        first_error=errors[0] if errors else "",
        database_cpu_ms=database_cpu_ms,
    )


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs and theirs == theirs and ours == ours else "-"


def _table(chosen: list[Payload], results: dict[tuple[str, str], list[Block]], peer: bool) -> str:
    def figure(payload: str, target: str, attribute: str) -> float:
        blocks = results.get((payload, target), [])
        return _median([getattr(b, attribute) for b in blocks if getattr(b, attribute) is not None])

    lines = [
        "| payload, route | added latency p50 ms: LiteLLM / ours (ratio) "
        "| requests/s at C: LiteLLM / ours (ratio) | CPU ms/request: LiteLLM / ours (ratio) |",
        "|---|---|---|---|",
    ]
    for payload in chosen:
        direct = figure(payload.name, "direct", "p50_ms")
        added = {t: figure(payload.name, t, "p50_ms") - direct for t in ("litellm", "tryon")}
        rps = {t: figure(payload.name, t, "rps") for t in ("litellm", "tryon")}
        cpu = {t: figure(payload.name, t, "cpu_ms") for t in ("litellm", "tryon")}
        cells = []
        for values in (added, rps, cpu):
            theirs = f"{values['litellm']:.1f}" if peer else "-"
            cells.append(
                f"{theirs} / {values['tryon']:.1f} ({_ratio(values['tryon'], values['litellm'])})"
            )
        lines.append(f"| {payload.description} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def _run(args: argparse.Namespace, servers: peer_servers.Servers, database: str) -> None:
    chosen_names = args.payloads.split(",")
    every = payloads(big_side=args.big_side)
    chosen = [every[name] for name in chosen_names]
    upstream = servers.upstream(UPSTREAM_PORT)
    targets: dict[str, tuple[str, int | None, str, str]] = {
        "direct": (upstream.url, None, peer_servers.UPSTREAM_OPENAI_KEY, "authorization")
    }
    if not args.no_litellm:
        litellm = servers.litellm(LITELLM_PORT, upstream.url, args.litellm_spec)
        targets["litellm"] = (litellm.url, litellm.pid, peer_servers.LITELLM_KEY, "authorization")
    tryon, key = servers.tryon(TRYON_PORT, upstream.url, database, credits=10**12)
    targets["tryon"] = (tryon.url, tryon.pid, key, "authorization")
    watched = {name: pid for name, (_, pid, _, _) in targets.items() if pid}
    await asyncio.sleep(2)
    rss_idle = {name: proc_stats.rss_mb(pid) for name, pid in watched.items()}
    print(f"started; {proc_stats.load_average()}", flush=True)

    results: dict[tuple[str, str], list[Block]] = {}
    on_postgres = database.startswith("postgresql")
    limits = httpx.Limits(max_connections=args.concurrency + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        for round_number in range(args.rounds):
            for payload in chosen:
                for target, (base, pid, secret, header) in targets.items():
                    request = payload.request(target)
                    if target == "direct" and payload.way == "chat":
                        header, secret = "x-goog-api-key", peer_servers.UPSTREAM_GEMINI_KEY
                    block = await _block(
                        client,
                        base,
                        request.with_auth(secret, header),
                        pid=pid,
                        sequential=args.requests,
                        burst=args.burst,
                        concurrency=args.concurrency,
                        database=target == "tryon" and on_postgres,
                    )
                    results.setdefault((payload.name, target), []).append(block)
                    cpu = f"{block.cpu_ms:.1f}" if block.cpu_ms is not None else "-"
                    server = block.database_cpu_ms
                    print(
                        f"round {round_number + 1} {payload.name:15s} {target:8s} "
                        f"p50 {block.p50_ms:7.1f} ms  {block.rps:6.1f} req/s  cpu {cpu:>6s} ms/req"
                        + (f"  PostgreSQL cpu {server:.1f} ms/req" if server is not None else "")
                        + (f"  errors {block.errors}: {block.first_error}" if block.errors else ""),
                        flush=True,
                    )
    rss_after = {name: proc_stats.rss_mb(pid) for name, pid in watched.items()}
    await asyncio.sleep(REST_SECONDS)  # the same short rest for each: what stays resident
    rss_rest = {name: proc_stats.rss_mb(pid) for name, pid in watched.items()}
    print()
    print(
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.node()}: {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {proc_stats.load_average()} (at the end); "
        f"tryon on {database.split(':', 1)[0]}"
        + ("" if args.no_litellm else f", LiteLLM {peer_servers.litellm_version()}")
        + f"; {args.rounds} rounds x ({args.requests} sequential + {args.burst} at "
        f"{args.concurrency} in flight), medians over the rounds"
    )
    print()
    table = _table(chosen, results, peer="litellm" in targets)
    print(table.replace(" at C:", f" at {args.concurrency}:"))
    print()
    if on_postgres:
        spent = {
            payload.name: _median(
                [b.database_cpu_ms for b in results[(payload.name, "tryon")] if b.database_cpu_ms]
            )
            for payload in chosen
        }
        print(
            "PostgreSQL server CPU ms/request (ours): "
            + ", ".join(f"{name} {ms:.1f}" for name, ms in spent.items())
        )
    for name in watched:
        if name != "direct":
            print(
                f"RSS {name}: idle {rss_idle[name]:.0f} MB, after {rss_after[name]:.0f} MB, "
                f"{REST_SECONDS:.0f} s later {rss_rest[name]:.0f} MB"
            )
    if args.json:
        dump = {
            f"{payload}/{target}": [block.__dict__ for block in blocks]
            for (payload, target), blocks in results.items()
        }
        dump["rss"] = {"idle": rss_idle, "after": rss_after, "rest": rss_rest}  # type: ignore[assignment]
        with open(args.json, "w") as out:  # noqa: ASYNC230 (once, at the end)
            json.dump(dump, out, indent=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=100, help="sequential, per block")
    parser.add_argument("--burst", type=int, default=320, help="requests in the burst, per block")
    parser.add_argument("--concurrency", type=int, default=32, help="in flight in the burst")
    parser.add_argument(
        "--payloads",
        default="tiny-multipart,tiny-chat,big-multipart,big-chat",
        help="comma-separated, of: tiny-multipart, tiny-chat, big-multipart, big-chat",
    )
    parser.add_argument("--big-side", type=int, default=512, help="side of the big PNGs, px")
    peer_servers.add_database_options(parser, made="its own database tryon_bench")
    parser.add_argument("--no-litellm", action="store_true", help="this gateway alone")
    parser.add_argument("--litellm-spec", default="litellm[proxy]", help="what to install")
    parser.add_argument("--json", help="write every block's figures here")
    args = parser.parse_args()

    folder = peer_servers.BENCH_VAR / f"peer-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    with contextlib.ExitStack() as stack:
        if args.database == "postgres":
            database = stack.enter_context(
                peer_servers.postgres_database(args.postgres_url, "tryon_bench")
            )
        else:
            database = f"sqlite+aiosqlite:///{folder}/tryon.db"
        servers = stack.enter_context(peer_servers.Servers(folder))
        asyncio.run(_run(args, servers, database))


if __name__ == "__main__":
    main()
