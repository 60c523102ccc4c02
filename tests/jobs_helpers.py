"""Helpers for async-job tests: submit, wait for a status, read the ledger."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import auth, own_database
from tryon_core import billing
from tryon_core.accounts import get_account

Client = AsyncTestClient[Litestar]


async def submit(client: Client, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/tryon", json={**body, "mode": "async"}, headers=auth(key))
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


async def job(client: Client, key: str, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/tryon/{job_id}", headers=auth(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for(
    client: Client, key: str, job_id: str, *statuses: str, within: float = 20.0
) -> dict[str, Any]:
    """Poll until the job's status is one of ``statuses`` (default: an end)."""
    wanted = statuses or ("completed", "failed")
    end = time.monotonic() + within
    while True:
        body = await job(client, key, job_id)
        if body["status"] in wanted:
            return body
        assert time.monotonic() < end, f"job {job_id} stayed {body['status']}: {body}"
        await asyncio.sleep(0.05)


async def wait_for_attempt(
    client: Client, key: str, job_id: str, *, within: float = 20.0
) -> dict[str, Any]:
    """Poll until the job's first attempt has started (``processing`` comes a moment before,
    when a worker claims the job)."""
    end = time.monotonic() + within
    while True:
        body = await job(client, key, job_id)
        if body["attempts"]:
            return body
        assert time.monotonic() < end, f"job {job_id} started no attempt: {body}"
        await asyncio.sleep(0.05)


async def money(client: Client | Litestar, account_id: str) -> tuple[int, int, int, int]:
    """(balance, reserved) as the account says and as the ledger sums them."""
    async with own_database(client) as database, database.reading() as conn:
        account = await get_account(conn, account_id)
        totals = await billing.ledger_totals(conn, account_id)
    return account.balance, account.reserved, totals.balance, totals.reserved
