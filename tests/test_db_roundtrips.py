"""What one synchronous request costs the database, counted (not timed): two write
transactions (open: generation, reservation, first attempt; outcome: attempt end, settlement,
files) and no read: the key authenticated on the request before and is remembered
(``[keys] cache_seconds``), so the count cannot creep back up unnoticed.

Counted in the request's own context only (``request_context``), so the gateway's background
tasks (sweeper, key-usage flush) never make it flaky.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import auth, new_key
from tryon_core import request_context
from tryon_core.testing.statements import count_statements

Client = AsyncTestClient[Litestar]
REQUESTS = 3
PER_SYNC_REQUEST = {
    "select": 1,  # the key still live (the key itself: remembered, see tryon_core.key_cache)
    "insert": 5,  # generation, reserve ledger row, attempt; capture ledger row, file
    "update": 6,  # account, key; attempt end, generation settled and ended, account, key
    "begin": 2,
    "commit": 2,
}
TRIPS = {
    "sqlite": 12,  # each statement on its own (none costs a round trip: SQLite is in-process)
    # PostgreSQL: the writes nobody reads back go with the next statement (Prepared.defer),
    # those that lock rows chained in the order written: generation + first attempt, reserve
    # ledger row + account, key; attempt end + the key still live, generation settled,
    # capture ledger row + file + account + key
    "postgresql": 6,
}


def _in_a_request() -> bool:
    context = request_context.current()
    return context is not None and context.request_id is not None


def _chat(person_url: str, garment_url: str) -> dict[str, Any]:
    content = [
        {"type": "text", "text": "Put this shirt on this person"},
        {"type": "image_url", "image_url": {"url": person_url}},
        {"type": "image_url", "image_url": {"url": garment_url}},
    ]
    return {"model": "scripted/beta", "messages": [{"role": "user", "content": content}]}


@pytest.mark.parametrize("route", ["/api/v1/tryon", "/api/v1/chat/completions"])
async def test_a_sync_request_takes_two_write_transactions(
    client: Client,
    route: str,
    tryon_body: Callable[..., dict[str, Any]],
    person_url: str,
    garment_url: str,
) -> None:
    key, _ = await new_key(client, credits=100)
    body = (
        tryon_body(model="scripted/beta")
        if route == "/api/v1/tryon"
        else _chat(person_url, garment_url)
    )
    first = await client.post(route, json=body, headers=auth(key))  # connections, caches
    assert first.status_code == 200, first.text
    engine = client.app.state.gateway.database.engine
    with count_statements(engine, only=_in_a_request) as counts:
        for _ in range(REQUESTS):
            response = await client.post(route, json=body, headers=auth(key))
            assert response.status_code == 200, response.text
    dialect = engine.dialect.name
    assert counts.per(REQUESTS) == {**PER_SYNC_REQUEST, "trips": TRIPS[dialect]}
