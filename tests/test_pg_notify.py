"""Job events through PostgreSQL LISTEN/NOTIFY (no Redis): when a replica's LISTEN connection is
lost, it listens again, its subscribers re-read what they missed, and later events arrive.

(The events themselves, completion and cancel across replicas, are in test_shared_state.py,
on both brokers.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from litestar import Litestar

from tests.helpers import eventually, new_key
from tests.replicas import accept, has_status, messages, serve_replicas, submit
from tests.tcp_proxy import TcpProxy
from tryon_core.gateway import LISTENER_NAME
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep

pytestmark = pytest.mark.postgres

ALPHA = "scripted/alpha"


async def fetch(database_url: str, query: str, *args: Any) -> list[Any]:
    """Rows of ``query`` on the database, through a connection of the test's own."""
    parts = urlsplit(database_url.replace("+asyncpg", ""))
    conn = await asyncpg.connect(
        host=parts.hostname, port=parts.port, user=parts.username, database=parts.path[1:]
    )
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def listeners(database_url: str) -> set[int]:
    """The server process ids of the LISTEN connections on the database."""
    rows = await fetch(
        database_url,
        "SELECT pid FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = $1",
        LISTENER_NAME,
    )
    return {row["pid"] for row in rows}


async def test_listen_connections_killed_by_the_server_come_back_and_events_flow_again(
    make_app: Callable[..., Litestar],
    postgres_database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Any,
) -> None:
    async with serve_replicas(make_app, postgres_database_url, ["", ""]) as (a, b):
        key, _ = await new_key(a.app)
        before = await listeners(postgres_database_url)
        assert len(before) == 2  # one a replica
        killed = await fetch(
            postgres_database_url,
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid",
            list(before),
        )
        assert all(row[0] for row in killed)

        async def replaced() -> bool:
            now = await listeners(postgres_database_url)
            return len(now) == 2 and not now & before

        await eventually(replaced)
        scripted.script(ALPHA, Sleep(0.5))
        job_id = await submit(b, key, tryon_body(model=ALPHA))  # B runs it
        async with a.socket(job_id, key) as socket:
            received = await messages(socket)
        assert [m["job"]["status"] for m in received][-1] == "completed"


async def test_a_replica_cut_from_the_database_catches_up_on_the_events_it_missed(
    make_app: Callable[..., Litestar],
    postgres_database_url: str,
    scripted: ScriptedProvider,
    tryon_body: Any,
) -> None:
    target = urlsplit(postgres_database_url)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 5432))
    await proxy.start()
    through_proxy = postgres_database_url.replace(
        target.netloc, f"{target.username}@127.0.0.1:{proxy.port}"
    )
    try:
        async with (
            serve_replicas(make_app, through_proxy, [""]) as (a,),
            serve_replicas(make_app, postgres_database_url, [""]) as (b,),
        ):
            key, _ = await new_key(b.app)
            scripted.script(ALPHA, Sleep(2.0))
            accepted = await accept(b, key, tryon_body(model=ALPHA))  # B runs it
            job_id = accepted["jobId"]
            # opened with the job's token, the socket reads nothing while nothing changes
            async with a.token_socket(accepted["wsUrl"]) as socket:
                while not json.loads(await socket.recv())["job"]["attempts"]:
                    pass  # until the upstream call has started: nothing changes then for 2 s
                await asyncio.sleep(0.3)  # A is done with the events that led there
                await proxy.cut()  # A loses its database, LISTEN included; B completes the job
                await eventually(lambda: has_status(b, key, job_id, "completed"))
                await proxy.restore()
                received = await messages(socket)  # woken once A listens again
            assert [m["job"]["status"] for m in received][-1] == "completed"

            scripted.script(ALPHA, Sleep(0.5))
            later = await submit(b, key, tryon_body(model=ALPHA))
            async with a.socket(later, key) as socket:
                received = await messages(socket)
            assert [m["job"]["status"] for m in received][-1] == "completed"
    finally:
        await proxy.close()
