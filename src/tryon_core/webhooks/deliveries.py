"""Webhook deliveries: rows in the database, sent and retried until answered or given up.

A delivery is enqueued in the transaction that finishes its job, due at once. ``deliver_due``
claims what is due with a conditional UPDATE (``attempts`` as the version, so two processes
never send the same try) that also pushes ``next_attempt_at`` past the send's timeout: a process
that dies mid-send leaves a row that falls due again. Each try POSTs the payload through the
egress guard, signed with the account's current secret. A 2xx delivers; anything else (another
status, a redirect, a timeout, a failed connection) schedules the next try after
``[webhooks] backoff_seconds``, and after the last one the delivery is ``failed``. A URL the
guard refuses is not retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core import metrics
from tryon_core.db.schema import webhook_deliveries as deliveries
from tryon_core.egress import check_url
from tryon_core.errors import InvalidRequest
from tryon_core.ids import as_utc, new_id, utcnow
from tryon_core.webhooks.secrets import get_secret
from tryon_core.webhooks.signing import (
    EVENT_HEADER,
    ID_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)

if TYPE_CHECKING:
    from tryon_core.gateway import Gateway

__all__ = [
    "EVENTS",
    "Delivery",
    "deliver_due",
    "enqueue",
    "event_for_status",
    "list_deliveries",
    "run_webhooks",
    "validate_webhook_url",
]

log = logging.getLogger("tryon.webhooks")

EVENTS = frozenset({"job.completed", "job.failed"})
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
MAX_URL_LENGTH = 2000
PARAM = "webhook_url"
_BATCH = 50
_LEASE_MARGIN = 5.0  # seconds a claim outlives the send's own timeout


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One delivery as its account sees it (the payload is the job body, not repeated)."""

    id: str
    job_id: str
    url: str
    event: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    object: Literal["webhook_delivery"] = "webhook_delivery"


@dataclass(frozen=True, kw_only=True)
class _Claim:
    id: str
    url: str
    event: str
    payload: bytes
    attempt: int  # this try's number, from 1
    secret: str


def event_for_status(status: str) -> str:
    """The ``Tryon-Event`` of a job's final status: ``job.completed``, else ``job.failed``.

    ``failed`` and ``cancelled`` (and any other final status) are ``job.failed``; the body's
    ``status`` says which.
    """
    return "job.completed" if status == "completed" else "job.failed"


def validate_webhook_url(url: str, *, allow_hosts: frozenset[str] | Iterable[str]) -> str:
    """``url`` normalized, or ``InvalidRequest`` (400) naming ``webhook_url``.

    Refused: anything but http(s), user info, more than 2000 characters, a malformed URL
    (``invalid_url``), and an IP literal that is private, loopback, link-local (cloud metadata)
    or otherwise not public (``forbidden_url``) unless its ``"host:port"`` is in
    ``allow_hosts``. Names are checked again, resolved, each time a delivery is sent.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequest(
            f"{PARAM} is longer than {MAX_URL_LENGTH} characters.", type="invalid_url", param=PARAM
        )
    return check_url(url, param=PARAM, allow_hosts=allow_hosts)


async def enqueue(
    conn: AsyncConnection,
    *,
    account_id: str,
    generation_id: str,
    url: str,
    payload: bytes,
    event: str,
) -> str:
    """Record a delivery of ``payload`` to ``url``, due now, in the caller's transaction."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}; one of {sorted(EVENTS)}")
    delivery_id = new_id("whd")
    now = utcnow()
    await conn.execute(
        insert(deliveries).values(
            id=delivery_id,
            account_id=account_id,
            generation_id=generation_id,
            url=url,
            event=event,
            payload=payload,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    return delivery_id


async def deliver_due(gateway: Gateway, *, batch: int = _BATCH) -> int:
    """Send every delivery that is due (up to ``batch``) once. Returns how many were tried."""
    claims = await _claim(gateway, batch)
    results = await asyncio.gather(
        *(_send(gateway, claim) for claim in claims), return_exceptions=True
    )
    for claim, result in zip(claims, results, strict=True):
        if isinstance(result, BaseException):
            log.error("webhook delivery %s: %r", claim.id, result)
    return len(claims)


async def run_webhooks(gateway: Gateway, *, interval: float | None = None) -> None:
    """Deliver forever, every ``interval`` seconds (``[webhooks] poll_interval_seconds``)."""
    wait = gateway.settings.webhooks.poll_interval_seconds if interval is None else interval
    while True:
        try:
            while await deliver_due(gateway) >= _BATCH:
                pass
        except Exception:
            log.exception("webhook pass failed")
        await asyncio.sleep(wait)


async def list_deliveries(
    conn: AsyncConnection, *, account_id: str, job_id: str | None = None, limit: int = 100
) -> list[Delivery]:
    """The account's deliveries, newest first; only one job's with ``job_id``."""
    query = select(deliveries).where(deliveries.c.account_id == account_id)
    if job_id is not None:
        query = query.where(deliveries.c.generation_id == job_id)
    query = query.order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc()).limit(limit)
    return [
        Delivery(
            id=row.id,
            job_id=row.generation_id,
            url=row.url,
            event=row.event,
            status=row.status,
            attempts=row.attempts,
            last_status=row.last_status,
            last_error=row.last_error,
            next_attempt_at=_utc(row.next_attempt_at),
            created_at=as_utc(row.created_at),
            delivered_at=_utc(row.delivered_at),
        )
        for row in (await conn.execute(query)).all()
    ]


# -- one pass ---------------------------------------------------------------------------------


async def _claim(gateway: Gateway, batch: int) -> list[_Claim]:
    """Take the due deliveries this process will try now; none is taken by two processes."""
    settings = gateway.settings.webhooks
    tries = 1 + len(settings.backoff_seconds)
    now = utcnow()
    lease = now + timedelta(seconds=settings.timeout + _LEASE_MARGIN)
    claims: list[_Claim] = []
    async with gateway.database.reading() as conn:  # most passes find nothing: no write lock
        due = (
            await conn.execute(
                select(deliveries)
                .where(deliveries.c.status == PENDING, deliveries.c.next_attempt_at <= now)
                .order_by(deliveries.c.next_attempt_at)
                .limit(batch)
            )
        ).all()
    if not due:
        return claims
    async with gateway.database.transaction() as conn:
        for row in due:
            unchanged = (
                deliveries.c.id == row.id,
                deliveries.c.status == PENDING,
                deliveries.c.attempts == row.attempts,
            )
            if row.attempts >= tries:  # the last try was cut short (the process stopped)
                await conn.execute(
                    update(deliveries)
                    .where(*unchanged)
                    .values(
                        status=FAILED,
                        next_attempt_at=None,
                        updated_at=now,
                        last_error=row.last_error or "the last try was interrupted",
                    )
                )
                metrics.webhook_try(FAILED)
                continue
            taken = await conn.execute(
                update(deliveries)
                .where(*unchanged)
                .values(attempts=row.attempts + 1, next_attempt_at=lease, updated_at=now)
            )
            if taken.rowcount != 1:
                continue
            secret = await get_secret(conn, row.account_id)
            claims.append(
                _Claim(
                    id=row.id,
                    url=row.url,
                    event=row.event,
                    payload=row.payload,
                    attempt=row.attempts + 1,
                    secret=secret.secret,
                )
            )
    return claims


async def _send(gateway: Gateway, claim: _Claim) -> None:
    """One try of one claimed delivery, and its outcome recorded."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature_header(claim.secret, claim.payload),
        ID_HEADER: claim.id,
        EVENT_HEADER: claim.event,
    }
    status: int | None = None
    error: str | None = None
    final = False
    try:
        status = await gateway.webhook_sender.post(
            claim.url, body=claim.payload, headers=headers, param=PARAM
        )
    except InvalidRequest as exc:  # the guard refuses the URL: no later try would differ
        error, final = exc.message, True
    except OSError as exc:  # TimeoutError, ConnectionError
        error = str(exc) or type(exc).__name__
    if status is not None and not 200 <= status < 300:
        error = f"HTTP {status}"
        if 300 <= status < 400:
            error += " (redirects are not followed)"
    await _record(gateway, claim, status=status, error=error, final=final)


async def _record(
    gateway: Gateway, claim: _Claim, *, status: int | None, error: str | None, final: bool
) -> None:
    now = utcnow()
    backoff = gateway.settings.webhooks.backoff_seconds
    values: dict[str, object] = {"last_status": status, "last_error": error, "updated_at": now}
    if error is None:
        values |= {"status": DELIVERED, "delivered_at": now, "next_attempt_at": None}
    elif final or claim.attempt > len(backoff):
        values |= {"status": FAILED, "next_attempt_at": None}
    else:
        values["next_attempt_at"] = now + timedelta(seconds=backoff[claim.attempt - 1])
    async with gateway.database.transaction() as conn:
        await conn.execute(
            update(deliveries)
            .where(
                deliveries.c.id == claim.id,
                deliveries.c.status == PENDING,
                deliveries.c.attempts == claim.attempt,
            )
            .values(values)
        )
    metrics.webhook_try("retry" if values.get("status") is None else str(values["status"]))


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)
