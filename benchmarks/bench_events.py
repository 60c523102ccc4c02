"""Job events across processes: how long a status change published in one process takes to wake
a subscriber in another, through Redis (``[redis] url``) and through PostgreSQL LISTEN/NOTIFY
(PostgreSQL without Redis).

This process subscribes to N jobs; a second process publishes one change per job, a few
milliseconds apart, and reports when it published each. Prints the median, p95 and worst
publish-to-wake latency of each broker. Asserts nothing. A broker that is not reachable is
said so and skipped.

    uv run python benchmarks/bench_events.py [--events 200] [--broker redis|postgres|both]
        [--redis redis://127.0.0.1:6379/0]
        [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from tryon_core.config import RedisConfig
from tryon_core.db import create_database
from tryon_core.errors import ConfigError
from tryon_core.jobs.events import JobEvents, PgJobEvents, RedisJobEvents
from tryon_core.pg_link import PgLink
from tryon_core.redis_link import RedisLink

NAMES = {"redis": "Redis", "postgres": "PostgreSQL LISTEN/NOTIFY"}


@asynccontextmanager
async def broker_events(broker: str, address: str, prefix: str) -> AsyncIterator[JobEvents]:
    """Job events of this process through ``broker`` at ``address``, running while inside.
    ConfigError (Redis) or OSError (PostgreSQL) when the broker cannot be reached."""
    if broker == "redis":
        link = RedisLink(RedisConfig(url=address, prefix=prefix))
        events: JobEvents = RedisJobEvents(link)
        await link.start()
        try:
            yield events
        finally:
            await link.close()
        return
    database = create_database(address)
    connect = functools.partial(database.connect_plain, application_name="bench-events")
    await (await connect()).close()  # reachable, or OSError
    notify = PgLink(connect, timeout=5.0)
    events = PgJobEvents(notify)
    await notify.start()
    try:
        yield events
    finally:
        await notify.close()
        await database.dispose()


async def publish(broker: str, address: str, prefix: str, count: int) -> None:
    """The other process: publish a change of each job, printing when each was published."""
    async with broker_events(broker, address, prefix) as events:
        sent = []
        for index in range(count):
            sent.append(time.time())
            events.publish(f"{prefix}-{index}")
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.5)  # let the sender drain its queue
    print(json.dumps(sent))


async def measure(broker: str, address: str, count: int) -> None:
    prefix = f"bench-{secrets.token_hex(4)}"
    woken: dict[int, float] = {}
    try:
        async with AsyncExitStack() as stack:
            events = await stack.enter_async_context(broker_events(broker, address, prefix))
            changed = [
                await stack.enter_async_context(events.subscribe(f"{prefix}-{i}"))
                for i in range(count)
            ]

            async def wake(index: int) -> None:
                await changed[index].wait()
                woken[index] = time.time()

            waiters = [asyncio.create_task(wake(i)) for i in range(count)]
            publisher = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--publish",
                "--broker",
                broker,
                "--address",
                address,
                "--prefix",
                prefix,
                "--events",
                str(count),
                stdout=subprocess.PIPE,
            )
            output, _ = await publisher.communicate()
            await asyncio.wait(waiters, timeout=5)
            for waiter in waiters:
                waiter.cancel()
    except (ConfigError, OSError) as exc:
        print(f"bench_events: {NAMES[broker]} skipped ({exc})")
        return
    sent = json.loads(output)
    latencies = sorted((woken[i] - sent[i]) * 1000 for i in woken)
    lost = count - len(latencies)
    if not latencies:
        print(f"bench_events: no event arrived through {NAMES[broker]}")
        return
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(
        f"job events across processes through {NAMES[broker]}: {len(latencies)} events, "
        f"median {statistics.median(latencies):.2f} ms, p95 {p95:.2f} ms, "
        f"worst {latencies[-1]:.2f} ms, lost {lost}"
    )


async def main(args: argparse.Namespace) -> None:
    brokers = ["redis", "postgres"] if args.broker == "both" else [args.broker]
    for broker in brokers:
        await measure(broker, args.redis if broker == "redis" else args.postgres, args.events)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--broker", choices=["redis", "postgres", "both"], default="both")
    parser.add_argument(
        "--redis", default=os.environ.get("TRYON_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "TRYON_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        asyncio.run(publish(args.broker, args.address, args.prefix, args.events))
    else:
        asyncio.run(main(args))
