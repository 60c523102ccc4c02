"""Run one async job: claim it, run (or resume) its candidates, settle it, announce it.

A job is claimed with a lease (``lease_owner``/``lease_until``), renewed while it runs, so
that exactly one process works on it; when a process dies its lease lapses and the sweeper
of any process (the same one restarted, or another) claims the job again.

Resuming: attempts are rows written as they happen, and an upstream's task id is committed
before polling starts. A claimed job whose last attempt was cut short resumes that attempt
with its task id when the model is submit-poll (the upstream keeps working meanwhile and is
never asked twice); an attempt of a synchronous model, or one cut short before the upstream
accepted it, is marked ``interrupted`` and the model is called again.

Settling happens exactly once whatever races (completion, cancellation, deadline, a second
process): :func:`tryon_core.billing.settle` is the arbiter, and the loser keeps nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.db.schema import attempts, files, generations
from tryon_core.errors import InvalidOption, TryOnError
from tryon_core.fallback import Attempt, cancel_task
from tryon_core.gateway import Gateway
from tryon_core.ids import as_utc, utcnow
from tryon_core.jobs.finish import finish_failure, finish_success
from tryon_core.model_options import check_options
from tryon_core.pipeline import AttemptLog, Work, error_record, execute
from tryon_core.provider import InputImage
from tryon_core.request import ImageSource, TryOnRequest
from tryon_core.request_context import bind_generation

__all__ = ["Cancelled", "DeadlineExceeded", "claim_job", "run_claimed", "run_job"]

log = logging.getLogger("tryon.jobs")


class Cancelled(TryOnError):
    status = 499
    type = "cancelled"

    def __init__(self, message: str = "The job was cancelled; nothing was charged.") -> None:
        super().__init__(message)


class DeadlineExceeded(TryOnError):
    status = 504
    type = "deadline_exceeded"

    def __init__(
        self, message: str = "The job did not finish before its deadline; nothing was charged."
    ) -> None:
        super().__init__(message)


class _CannotRun(TryOnError):
    status = 503
    type = "model_unavailable"


async def run_job(gateway: Gateway, job_id: str) -> None:
    """Run the job if it can be claimed; return when it has ended or was handed back."""
    row = await claim_job(gateway, job_id)
    if row is not None:
        await run_claimed(gateway, row)


async def run_claimed(gateway: Gateway, row: Any) -> None:
    """Run a job this process has claimed (``row`` from :func:`claim_job`) to its end, or hand
    it back when cancelled by the process stopping (the CancelledError then propagates)."""
    job_id = row.id
    bind_generation(job_id)  # this job's log lines carry its generation id
    gateway.events.publish(job_id)
    deadline = as_utc(row.deadline_at)
    if deadline <= utcnow():
        await finish_failure(gateway, job_id, error_record(DeadlineExceeded()))
        return
    try:
        work, adopt = await _load(gateway, row)
    except TryOnError as exc:
        await finish_failure(gateway, job_id, error_record(exc))
        return
    except OSError as exc:  # the file store is away: the job waits for it, untouched
        log.warning("job %s: its input images cannot be read now (%s); handed back", job_id, exc)
        await _hand_back(gateway, job_id)
        return
    attempts = JobAttemptLog(gateway, job_id, adopt=adopt)
    watcher = asyncio.create_task(_watch(gateway, job_id, asyncio.current_task(), attempts))
    try:
        async with asyncio.timeout_at(_loop_time(deadline)):
            outcome = await execute(gateway, work, attempts)
    except TimeoutError:
        abandoned = attempts.last
        if abandoned is not None and abandoned.status == "cancelled" and abandoned.task_id:
            await _cancel_upstream(gateway, abandoned)  # nobody will collect it: stop it
        await finish_failure(gateway, job_id, error_record(DeadlineExceeded()))
    except asyncio.CancelledError:
        if await _cancel_requested(gateway, job_id):
            await finish_failure(gateway, job_id, error_record(Cancelled()))
            return
        await asyncio.shield(_hand_back(gateway, job_id))
        raise
    except TryOnError as exc:
        await finish_failure(gateway, job_id, error_record(exc))
    except Exception as exc:
        log.exception("job %s failed unexpectedly", job_id)
        await finish_failure(gateway, job_id, error_record(exc))
    else:
        await finish_success(gateway, job_id, outcome, row.account_id)
    finally:
        watcher.cancel()


def _loop_time(moment: datetime) -> float:
    """The event loop's clock reading at wall-clock ``moment``."""
    return asyncio.get_running_loop().time() + (moment - utcnow()).total_seconds()


async def claim_job(gateway: Gateway, job_id: str) -> Any:
    """Take the job for this process with a lease: its row, or None if it is not to be run
    (ended, or held by a live lease elsewhere). Conditional, so a duplicate delivery claims
    nothing. Raises ServiceUnavailable while the database is away."""
    now = utcnow()
    lease = timedelta(seconds=gateway.settings.jobs.lease_seconds)
    async with gateway.database.transaction() as conn:
        result = await conn.execute(
            update(generations)
            .where(
                generations.c.id == job_id,
                generations.c.mode == "async",
                generations.c.settled.is_(False),
                or_(
                    generations.c.status == "queued",
                    (generations.c.status == "processing")
                    & or_(generations.c.lease_until.is_(None), generations.c.lease_until < now),
                ),
            )
            .values(
                status="processing",
                lease_owner=gateway.instance_id,
                lease_until=now + lease,
                updated_at=now,
            )
            .returning(generations)
        )
        return result.first()


async def _watch(
    gateway: Gateway, job_id: str, runner: asyncio.Task[Any] | None, attempts: JobAttemptLog
) -> None:
    """While the job runs: renew its claim every third of its length (stop the runner if it
    was lost), and on a cancel request ask the upstream to drop the current attempt's task
    where its adapter can (stop the runner if it did)."""
    seconds = gateway.settings.jobs.lease_seconds
    loop = asyncio.get_running_loop()
    renew_at = loop.time() + seconds / 3
    asked = False
    async with gateway.events.subscribe(job_id) as changed:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, renew_at - loop.time())):
                    await changed.wait()
            changed.clear()
            if loop.time() >= renew_at:
                renew_at = loop.time() + seconds / 3
                if not await _renew(gateway, job_id, seconds):
                    log.warning("job %s: lease lost; stopping here", job_id)
                    _stop(runner)
                    return
            if not asked and await _cancel_requested(gateway, job_id):
                current = attempts.current
                if current is not None and current.task_id is not None:
                    asked = True
                    if await _cancel_upstream(gateway, current):
                        _stop(runner)
                        return


def _stop(runner: asyncio.Task[Any] | None) -> None:
    if runner is not None:
        runner.cancel()


async def _renew(gateway: Gateway, job_id: str, seconds: float) -> bool:
    """Extend this process's lease; False if the job is no longer this process's to run."""
    try:
        async with gateway.database.transaction() as conn:
            result = await conn.execute(
                update(generations)
                .where(
                    generations.c.id == job_id,
                    generations.c.lease_owner == gateway.instance_id,
                    generations.c.status == "processing",
                )
                .values(lease_until=utcnow() + timedelta(seconds=seconds))
            )
    except TryOnError:
        return True  # the database is briefly away: try again; the lease has slack
    return result.rowcount == 1


async def _cancel_upstream(gateway: Gateway, attempt: Attempt) -> bool:
    """Ask the attempt's upstream to drop its task; True if it will not finish it."""
    entry = gateway.catalog.entries.get(attempt.model)
    if entry is None or attempt.task_id is None:
        return False
    return await cancel_task(entry, attempt.task_id, gateway.http)


async def _hand_back(gateway: Gateway, job_id: str) -> None:
    """This process stops (or lost the job): let the next claim take it at once."""
    with contextlib.suppress(Exception):
        async with gateway.database.transaction() as conn:
            await conn.execute(
                update(generations)
                .where(
                    generations.c.id == job_id,
                    generations.c.lease_owner == gateway.instance_id,
                    generations.c.status == "processing",
                )
                .values(lease_owner=None, lease_until=None)
            )


async def _cancel_requested(gateway: Gateway, job_id: str) -> bool:
    with contextlib.suppress(Exception):
        async with gateway.database.reading() as conn:
            flag = await conn.scalar(
                select(generations.c.cancel_requested).where(generations.c.id == job_id)
            )
            return bool(flag)
    return False


async def _load(gateway: Gateway, row: Any) -> tuple[Work, dict[int, int]]:
    """The job's work as stored, and where to pick it up."""
    catalog = gateway.catalog
    entries = [catalog.entries[slug] for slug in row.candidates or [] if slug in catalog]
    if not entries:
        raise _CannotRun("None of the models planned for this job is served any more.")
    ids = list(row.inputs or [])
    async with gateway.database.reading() as conn:
        stored = (await conn.execute(select(files).where(files.c.id.in_(ids)))).all()
        tried = (
            await conn.execute(
                select(attempts)
                .where(attempts.c.generation_id == row.id)
                .order_by(attempts.c.position)
            )
        ).all()
    inputs = await _inputs(gateway, ids, {file.id: file for file in stored})  # not in the
    # database's block: that one takes any OSError (the file store's too) for its own outage
    summary = row.request
    request = TryOnRequest(
        person=ImageSource(param="person_images[0]", url="stored"),
        garments=(),
        category=summary["category"],
        prompt=summary["prompt"],
        n=summary["n"],
        seed=summary["seed"],
        output_format=summary["output_format"],
        mode="async",
        options=summary.get("options") or {},
    )
    try:
        options = check_options(request.options, entries)
    except InvalidOption as exc:
        raise _CannotRun(f"The job's options no longer suit its models: {exc.message}") from None
    work = Work(
        generation_id=row.id,
        request=request,
        candidates=entries,
        person=inputs[0],
        garments=tuple(inputs[1:]),
        options=options,
    )
    if not tried:
        return work, {}
    last = tried[-1]
    slugs = [entry.slug for entry in entries]
    index = slugs.index(last.model) if last.model in slugs else -1
    if last.status == "failed":
        rest = entries[index + 1 :] if index >= 0 else entries
        if not rest:
            raise _CannotRun("Every model planned for this job failed.")
        return msgspec.structs.replace(work, candidates=rest, first_position=last.position + 1), {}
    # the last attempt was cut short (running) or succeeded without its result being kept
    capabilities = entries[index].model.capabilities if index >= 0 else None
    if (
        capabilities is not None
        and capabilities.execution == "submit-poll"
        and (last.task_id is not None or capabilities.keyed_tasks)
    ):
        # the upstream's task goes on: poll it (found by its id, or by the attempt's key when
        # the process died before the id was kept), never submit it again
        log.info("job %s: resuming upstream task of %s", row.id, last.model)
        resumed = msgspec.structs.replace(
            work,
            candidates=entries[index:],
            first_position=last.position,
            resume_task=last.task_id,
            resumed=True,
        )
        return resumed, {last.position: last.id}
    await _interrupted(gateway, last.id)
    rest = entries[index:] if index >= 0 else entries
    return msgspec.structs.replace(work, candidates=rest, first_position=last.position + 1), {}


async def _interrupted(gateway: Gateway, attempt_id: int) -> None:
    async with gateway.database.transaction() as conn:
        await conn.execute(
            update(attempts)
            .where(attempts.c.id == attempt_id)
            .values(
                status="failed",
                error_type="interrupted",
                error_message="The gateway stopped during this attempt; it was made again.",
                finished_at=utcnow(),
            )
        )


async def _inputs(gateway: Gateway, ids: list[str], rows: dict[str, Any]) -> list[InputImage]:
    """The job's input images from the file store; OSError (not FileNotFoundError) while the
    store is away."""
    images: list[InputImage] = []
    for file_id in ids:
        row = rows.get(file_id)
        try:
            if row is None:
                raise FileNotFoundError(file_id)
            data = await gateway.store.get(row.storage_key)
        except FileNotFoundError:
            raise _CannotRun("The job's input images are no longer in the file store.") from None
        images.append(
            InputImage(data=data, content_type=row.content_type, width=row.width, height=row.height)
        )
    return images


class JobAttemptLog(AttemptLog):
    """Also keeps the job's progress, refuses a new attempt of a cancelled job, and wakes
    the job's subscribers after each step."""

    current: Attempt | None = None
    """The attempt under way, if any (its task id once the upstream accepted it)."""
    last: Attempt | None = None
    """The latest attempt started, under way or not."""

    async def started(self, position: int, attempt: Attempt) -> None:
        await super().started(position, attempt)
        self.current = self.last = attempt
        self._gateway.events.publish(self._generation_id)

    async def task(self, position: int, task_id: str, attempt: Attempt) -> None:
        await super().task(position, task_id, attempt)
        self._gateway.events.publish(self._generation_id)

    async def state(self, position: int, state: str, attempt: Attempt) -> None:
        async with self._gateway.database.transaction() as conn:
            await self._also(conn, state, position, attempt)
        self._gateway.events.publish(self._generation_id)

    async def finished(self, position: int, attempt: Attempt, upstream_message: str | None) -> None:
        self.current = None
        await super().finished(position, attempt, upstream_message)
        self._gateway.events.publish(self._generation_id)

    async def _before_start(self, conn: AsyncConnection, position: int, attempt: Attempt) -> None:
        flag = await conn.scalar(
            select(generations.c.cancel_requested).where(generations.c.id == self._generation_id)
        )
        if flag:
            raise Cancelled()

    async def _also(
        self, conn: AsyncConnection, step: str, position: int, attempt: Attempt
    ) -> None:
        await conn.execute(
            update(generations)
            .where(generations.c.id == self._generation_id)
            .values(
                progress={
                    "attempt": position + 1,
                    "model": attempt.model,
                    "provider": attempt.provider,
                    "state": step,
                },
                updated_at=utcnow(),
            )
        )
