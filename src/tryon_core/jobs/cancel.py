"""``DELETE /api/v1/tryon/{id}``: cancel a job.

A queued job is cancelled at once: it ends ``failed`` with error type ``cancelled`` and
everything held for it is released. A job already processing is flagged: it starts no
further attempt (no fallback), and its worker (:func:`tryon_core.jobs.worker._watch`, in
whichever process runs it) asks the current attempt's upstream to drop the task where the
adapter can (:class:`~tryon_core.provider.CancellableAdapter`); if the upstream confirms, the
job ends cancelled and released. Otherwise the attempt runs to its end and the job is
reported as it ends.
"""

from __future__ import annotations

from sqlalchemy import update

from tryon_core.accounts import Principal
from tryon_core.db.schema import generations
from tryon_core.errors import NotFound
from tryon_core.gateway import Gateway
from tryon_core.jobs.finish import drop_inputs, notifier
from tryon_core.jobs.view import JobBody, load_job
from tryon_core.jobs.worker import Cancelled
from tryon_core.pipeline import error_record, record_failure

__all__ = ["cancel_job"]


async def cancel_job(gateway: Gateway, principal: Principal, job_id: str) -> JobBody:
    ended = False
    async with gateway.database.transaction() as conn:
        flagged = await conn.execute(
            update(generations)
            .where(
                generations.c.id == job_id,
                generations.c.account_id == principal.account_id,
                generations.c.status.in_(("queued", "processing")),
            )
            .values(cancel_requested=True)
        )
        if flagged.rowcount == 1:
            queued = await conn.execute(
                update(generations)
                .where(generations.c.id == job_id, generations.c.status == "queued")
                .values(status="failed")  # out of the queue at once; the failure is recorded below
            )
            if queued.rowcount == 1:
                error = error_record(Cancelled())
                ended = await record_failure(
                    conn, job_id, error, before_balances=notifier(gateway, job_id)
                )
    if ended:
        await drop_inputs(gateway, job_id)
    gateway.events.publish(job_id)
    async with gateway.database.reading() as conn:
        body = await load_job(conn, gateway, job_id, account_id=principal.account_id)
    if body is None:
        raise NotFound("No such job.", param="id")
    return body
