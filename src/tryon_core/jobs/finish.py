"""The end of a job: settle it, keep or drop its results, queue its webhook, wake subscribers.

Each runs in one transaction with the settlement, so a job that ends has its webhook
delivery recorded too, or neither happened.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.db.schema import files, generations
from tryon_core.gateway import Gateway
from tryon_core.jobs.view import load_job
from tryon_core.pipeline import Outcome, discard, record_failure, record_success
from tryon_core.webhooks import enqueue, event_for_status

__all__ = ["drop_inputs", "finish_failure", "finish_success", "notifier", "notify"]

log = logging.getLogger("tryon.jobs")


async def finish_success(gateway: Gateway, job_id: str, outcome: Outcome, account_id: str) -> bool:
    async with gateway.database.transaction(turn=account_id) as conn:
        kept = await record_success(
            conn, gateway, job_id, outcome, account_id, before_balances=notifier(gateway, job_id)
        )
    if kept:
        await drop_inputs(gateway, job_id)
    else:
        log.info("job %s ended elsewhere first; its results are dropped", job_id)
        await discard(gateway, outcome)
    gateway.events.publish(job_id)
    return kept


async def finish_failure(gateway: Gateway, job_id: str, error: dict[str, Any]) -> bool:
    async with gateway.database.transaction() as conn:
        ended = await record_failure(conn, job_id, error, before_balances=notifier(gateway, job_id))
    if ended:
        await drop_inputs(gateway, job_id)
    gateway.events.publish(job_id)
    return ended


async def drop_inputs(gateway: Gateway, job_id: str) -> None:
    """A job that ended needs its input photos no more: delete them (rows, then bytes).

    Best effort: what a failure here leaves behind, the retention pass removes later.
    """
    try:
        async with gateway.database.transaction() as conn:
            rows = (
                await conn.execute(
                    delete(files)
                    .where(files.c.generation_id == job_id, files.c.kind == "input")
                    .returning(files.c.storage_key)
                )
            ).all()
        for row in rows:
            await gateway.store.delete(row.storage_key)
    except Exception:
        log.exception("job %s: its input images could not be deleted yet", job_id)


def notifier(gateway: Gateway, job_id: str) -> Callable[[AsyncConnection], Awaitable[None]]:
    """:func:`notify`, as a settlement's ``before_balances``: written only if the job ends
    there, and before its account's and key's rows, which every request of theirs waits for."""
    return lambda conn: notify(conn, gateway, job_id)


async def notify(conn: AsyncConnection, gateway: Gateway, job_id: str) -> None:
    """Record the webhook delivery of the final status, if the job asked for one."""
    row = (
        await conn.execute(
            select(generations.c.webhook_url, generations.c.account_id).where(
                generations.c.id == job_id
            )
        )
    ).first()
    if row is None or not row.webhook_url:
        return
    body = await load_job(conn, gateway, job_id, account_id=None)
    assert body is not None
    await enqueue(
        conn,
        account_id=row.account_id,
        generation_id=job_id,
        url=row.webhook_url,
        payload=msgspec.json.encode(body),
        event=event_for_status(body.status),
    )
