"""Accept an async job: everything that can refuse it happens here, before the ``202``.

The request is planned and its images ingested exactly as for a sync request; the images
are kept in the file store and the job, its input files and its reservation are written in
one transaction. Only then is the job handed to the dispatcher. A crash at any point before
the commit leaves nothing behind but unreferenced files; after it, the job will run.

The dispatcher is asked first whether it can take jobs at all (the job queue's Redis answers):
if not, the request is a ``503`` with ``Retry-After`` and nothing is kept or charged. If the
queue goes away between that check and the hand-over, the job is accepted all the same: it is
in the database, and a sweeper delivers it once the queue is back.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.accounts import Principal
from tryon_core.errors import ServiceUnavailable
from tryon_core.gateway import Gateway
from tryon_core.ids import new_id, utcnow
from tryon_core.pipeline import (
    keep_file,
    open_generation,
    prepare,
    refusal_confirmed,
    remove_files,
    save_images,
)
from tryon_core.request import TryOnRequest

__all__ = ["Submitted", "submit_job"]

log = logging.getLogger("tryon.jobs")


class Submitted(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    deadline: datetime


async def submit_job(
    gateway: Gateway,
    principal: Principal,
    request: TryOnRequest,
    *,
    route: str,
    webhook_url: str | None = None,
) -> Submitted:
    """Persist the job and queue it."""
    planned = await prepare(gateway, principal, request)
    if gateway.jobs is not None:
        await gateway.jobs.check()  # ServiceUnavailable: refused before anything is kept
    job_id = new_id("gen")
    created = utcnow()
    deadline = created + timedelta(seconds=gateway.settings.jobs.deadline_seconds)
    keep = max(
        timedelta(hours=gateway.settings.storage.retention_hours),
        deadline - created + timedelta(hours=1),
    )
    inputs = [planned.person, *planned.garments]
    stored = await save_images(
        gateway,
        inputs,
        folder=f"inputs/{created:%Y/%m/%d}",
        failure="The file store could not keep the job's images; nothing was charged.",
    )

    async def keep_inputs(conn: AsyncConnection) -> None:
        for (file_id, key), image in zip(stored, inputs, strict=True):
            await keep_file(
                conn,
                image,
                file_id=file_id,
                key=key,
                kind="input",
                account_id=principal.account_id,
                generation_id=job_id,
                created=created,
                expires=created + keep,
            )

    try:
        async with (
            refusal_confirmed(gateway, principal, planned.least(request.n)),
            gateway.database.transaction(turn=principal.account_id) as conn,
        ):
            await open_generation(
                conn,
                principal,
                request,
                generation_id=job_id,
                reserved=planned.reservation(request.n),
                route=route,
                created=created,
                status="queued",
                candidates=[entry.slug for entry in planned.candidates],
                inputs=[file_id for file_id, _ in stored],
                deadline_at=deadline,
                webhook_url=webhook_url,
                limits=gateway.settings.limits,
                before_hold=keep_inputs,
            )
    except BaseException:
        await asyncio.shield(remove_files(gateway, [key for _, key in stored]))
        raise
    if gateway.jobs is not None:  # else a process that runs jobs sweeps it up
        try:
            await gateway.jobs.submit(job_id)
        except ServiceUnavailable:
            log.warning("job %s: accepted; the sweeper will deliver it", job_id)
    return Submitted(job_id=job_id, deadline=deadline)
