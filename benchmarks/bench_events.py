"""Job events across processes: how long a status change published in one process takes to wake
a subscriber in another, through Redis (``[redis] url``).

This process subscribes to N jobs; a second process publishes one change per job, a few
milliseconds apart, and reports when it published each. Prints the median, p95 and worst
publish-to-wake latency. Asserts nothing. Without a reachable Redis it says so and stops.

    uv run python benchmarks/bench_events.py [--events 200] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from contextlib import AsyncExitStack

from tryon_core.config import RedisConfig
from tryon_core.errors import ConfigError
from tryon_core.jobs.events import RedisJobEvents
from tryon_core.redis_link import RedisLink


async def publish(url: str, prefix: str, count: int) -> None:
    """The other process: publish a change of each job, printing when each was published."""
    link = RedisLink(RedisConfig(url=url, prefix=prefix))
    events = RedisJobEvents(link)
    await link.start()
    sent = []
    for index in range(count):
        sent.append(time.time())
        events.publish(f"job-{index}")
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.5)  # let the sender drain its queue
    await link.close()
    print(json.dumps(sent))


async def main(url: str, count: int) -> None:
    prefix = f"bench-{secrets.token_hex(4)}"
    link = RedisLink(RedisConfig(url=url, prefix=prefix))
    events = RedisJobEvents(link)
    try:
        await link.start()
    except ConfigError as exc:
        print(f"bench_events: skipped ({exc})")
        return
    woken: dict[int, float] = {}
    async with AsyncExitStack() as stack:
        changed = [
            await stack.enter_async_context(events.subscribe(f"job-{i}")) for i in range(count)
        ]

        async def wake(index: int) -> None:
            await changed[index].wait()
            woken[index] = time.time()

        waiters = [asyncio.create_task(wake(i)) for i in range(count)]
        publisher = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--publish",
            "--prefix",
            prefix,
            "--events",
            str(count),
            "--redis",
            url,
            stdout=subprocess.PIPE,
        )
        output, _ = await publisher.communicate()
        await asyncio.wait(waiters, timeout=5)
        for waiter in waiters:
            waiter.cancel()
    await link.close()
    sent = json.loads(output)
    latencies = sorted((woken[i] - sent[i]) * 1000 for i in woken)
    lost = count - len(latencies)
    if not latencies:
        print("bench_events: no event arrived")
        return
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(
        f"job events across processes through Redis: {len(latencies)} events, "
        f"median {statistics.median(latencies):.2f} ms, p95 {p95:.2f} ms, "
        f"worst {latencies[-1]:.2f} ms, lost {lost}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument(
        "--redis", default=os.environ.get("TRYON_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        asyncio.run(publish(args.redis, args.prefix, args.events))
    else:
        asyncio.run(main(args.redis, args.events))
