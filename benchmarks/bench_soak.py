"""Memory soak: the RSS of one ``tryon serve`` every 50 requests, route by route, big images.

Starts the fake upstream (``peer_upstream.py``) and one ``tryon serve`` (SQLite), then sends
each route in turn TOTAL requests, C in flight, all with the same two incompressible noise
PNGs (``--side`` 1290 px: about 5 MB each):

- ``multipart``: ``POST /api/v1/tryon``, multipart file parts (OpenAI's image edit behind);
- ``json``: ``POST /api/v1/tryon``, JSON with the images as data URLs;
- ``chat``: ``POST /api/v1/chat/completions``, data URLs (Gemini behind);
- ``stream``: the same chat completion with ``"stream": true`` (server-sent events).

Prints the RSS (and the peak so far) every ``--every`` requests, right after each route and
after ``--idle`` seconds of rest. ``--upstream-delay`` makes the fake take that long per image,
as a real model does (seconds): what a request holds while its upstream works then shows, C
times over. Memory that grows from one sample to the next without
coming back is a leak (or fragmentation); a flat line after the first samples is the goal.
Asserts nothing; not a test.

    uv run python benchmarks/bench_soak.py [--routes multipart,chat] [--total 300]
        [--concurrency 8] [--every 50] [--side 1290] [--idle 10] [--port 18101]
        [--upstream-port 18081] [--upstream-delay 0]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time
from datetime import UTC, datetime

import httpx
import peer_servers
import proc_stats
from peer_payloads import PROMPT, Payload, Request
from peer_upstream import noise_png

ROUTES = ("multipart", "json", "chat", "stream")


def requests(person: bytes, garment: bytes) -> dict[str, Request]:
    multipart = Payload("multipart", "", person, garment, "multipart").request("tryon")
    chat = Payload("chat", "", person, garment, "chat").request("tryon")
    streamed = json.loads(chat.body) | {"stream": True}
    urls = [f"data:image/png;base64,{base64.b64encode(x).decode()}" for x in (person, garment)]
    native = {
        "model": "openai/gpt-image-1",
        "prompt": PROMPT,
        "person_images": urls[0],
        "garment_images": urls[1],
    }
    json_type = {"content-type": "application/json"}
    return {
        "multipart": multipart,
        "json": Request("/api/v1/tryon", json.dumps(native).encode(), json_type, b'"completed"'),
        "chat": chat,
        "stream": Request(chat.path, json.dumps(streamed).encode(), json_type, b"[DONE]"),
    }


def _status(pid: int) -> dict[str, float]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {name: int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM")}


def _line(route: str, done: int, pid: int, began: float, note: str = "") -> None:
    status = _status(pid)
    print(
        f"{route:9s} {done:5d} requests  {time.perf_counter() - began:6.1f} s  "
        f"RSS {status['VmRSS']:7.1f} MB  peak {status['VmHWM']:7.1f} MB  {note}",
        flush=True,
    )


async def soak(
    client: httpx.AsyncClient,
    base: str,
    route: str,
    request: Request,
    *,
    pid: int,
    total: int,
    concurrency: int,
    every: int,
    idle: float,
) -> None:
    began = time.perf_counter()
    done, errors = 0, []
    gate = asyncio.Semaphore(concurrency)
    _line(route, 0, pid, began, "before")

    async def one() -> None:
        nonlocal done
        async with gate:
            try:
                reply = await client.post(
                    base + request.path, content=request.body, headers=request.headers
                )
                if reply.status_code != 200 or request.marker not in reply.content:
                    errors.append(f"{reply.status_code}: {reply.text[:160]}")
            except httpx.HTTPError as error:
                errors.append(f"{type(error).__name__}: {error}")
            done += 1
            if done % every == 0:
                _line(route, done, pid, began)

    await asyncio.gather(*(one() for _ in range(total)))
    _line(route, done, pid, began, "right after" + (f"; {len(errors)} errors" if errors else ""))
    if errors:
        print(f"          first error: {errors[0]}")
    await asyncio.sleep(idle)
    _line(route, done, pid, began, f"after {idle:g} s idle")


async def _run(args: argparse.Namespace, servers: peer_servers.Servers) -> None:
    upstream = servers.upstream(args.upstream_port, delay=args.upstream_delay)
    database = f"sqlite+aiosqlite:///{servers.folder}/tryon.db"
    tryon, key = servers.tryon(args.port, upstream.url, database, credits=10**12)
    person, garment = noise_png(args.side, seed=1), noise_png(args.side, seed=2)
    print(
        f"{datetime.now(UTC):%Y-%m-%d}: two {len(person) / 1e6:.1f} MB PNGs, {args.total} "
        f"requests a route, {args.concurrency} in flight; {proc_stats.load_average()}"
    )
    built = requests(person, garment)
    limits = httpx.Limits(max_connections=args.concurrency + 2)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        for route in args.routes.split(","):
            await soak(
                client,
                tryon.url,
                route,
                built[route].with_auth(key),
                pid=tryon.pid,
                total=args.total,
                concurrency=args.concurrency,
                every=args.every,
                idle=args.idle,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", default=",".join(ROUTES), help=f"of: {', '.join(ROUTES)}")
    parser.add_argument("--total", type=int, default=300, help="requests per route")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--every", type=int, default=50, help="print the RSS every N requests")
    parser.add_argument("--side", type=int, default=1290, help="side of the noise PNGs, px")
    parser.add_argument("--idle", type=float, default=10.0, help="rest after each route, s")
    parser.add_argument("--port", type=int, default=18101, help="the gateway's port")
    parser.add_argument("--upstream-port", type=int, default=18081, help="the fake's port")
    parser.add_argument(
        "--upstream-delay", type=float, default=0.0, help="seconds the fake takes per image"
    )
    args = parser.parse_args()
    folder = peer_servers.BENCH_VAR / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    with peer_servers.Servers(folder) as servers:
        asyncio.run(_run(args, servers))


if __name__ == "__main__":
    main()
