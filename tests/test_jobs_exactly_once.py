"""Each job is charged or released exactly once, whatever the interleaving.

Two gateway "processes" share one database, each with its own worker pool and sweeper.
Forty jobs run with random durations against a deadline that some of them miss, some fail
upstream, some are cancelled at random moments through either process, and one process loses
its leases mid-way (as if it froze), so the other takes its jobs over while it still runs
them. Whatever wins each race, every job ends settled once: one reservation, one capture
and/or one release adding up to it, the account's balance equal to its ledger, nothing held.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy import select

from tests.helpers import started_gateway
from tryon_core import accounts, billing
from tryon_core.accounts import Principal
from tryon_core.config import Settings
from tryon_core.db.schema import files, generations, ledger
from tryon_core.errors import ProviderUnavailable
from tryon_core.gateway import Gateway
from tryon_core.jobs import worker
from tryon_core.jobs.cancel import cancel_job
from tryon_core.jobs.dispatch import LocalDispatcher
from tryon_core.jobs.submit import submit_job
from tryon_core.jobs.sweeper import run_sweeper
from tryon_core.request import ImageSource, TryOnRequest
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Sleep

JOBS = 40


@asynccontextmanager
async def process(settings: Settings, scripted: ScriptedProvider) -> AsyncIterator[Gateway]:
    async with started_gateway(settings, scripted) as gateway:
        dispatcher = LocalDispatcher(functools.partial(worker.run_job, gateway), workers=6)
        gateway.jobs = dispatcher
        await dispatcher.start()
        sweeper = asyncio.create_task(run_sweeper(gateway))
        try:
            yield gateway
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await dispatcher.close()


async def test_every_job_is_settled_exactly_once(
    make_settings: Callable[..., Settings],
    database_url: str,
    person_url: str,
    garment_url: str,
) -> None:
    rng = random.Random(20261129)
    settings = make_settings(
        database_url,
        "[jobs]\ndeadline_seconds = 1.2\nlease_seconds = 0.6\nsweep_interval_seconds = 0.05\n",
    )
    scripted = ScriptedProvider()
    for _ in range(JOBS * 2):
        seconds = rng.uniform(0.0, 1.6)
        step = (
            Sleep(seconds, then=ProviderUnavailable("down"))
            if rng.random() < 0.2
            else Sleep(seconds)
        )
        scripted.script("scripted/alpha", step)
        scripted.script("scripted/beta", Sleep(rng.uniform(0.0, 0.4)))
    async with process(settings, scripted) as first, process(settings, scripted) as second:
        async with first.database.transaction() as conn:
            account_id = await accounts.create_account(conn, name="races")
            info, _ = await accounts.create_key(conn, account_id=account_id, name="races")
            await billing.grant(conn, account_id, 10_000)
        principal = Principal(key_id=info.id, account_id=account_id)

        def request() -> TryOnRequest:
            """A request of its own for each job: intake takes a data URL's text once read."""
            return TryOnRequest(
                person=ImageSource(param="person_images[0]", url=person_url),
                garments=(ImageSource(param="garment_images[0]", url=garment_url),),
                model="scripted/alpha",
                models=("scripted/beta",),
                mode="async",
            )

        async def cancel_soon(job_id: str) -> None:
            """A cancel within 80 ms of the submission: well inside the job's deadline even
            on a loaded machine, so cancels race the workers rather than the deadline."""
            await asyncio.sleep(rng.uniform(0.0, 0.08))
            await cancel_job(rng.choice([first, second]), principal, job_id)

        async def freeze_first() -> None:
            """The first process stops renewing its leases: the second takes its jobs over."""
            await asyncio.sleep(0.3)
            first.instance_id = "gw_frozen"

        cancels = []
        for index in range(JOBS):
            job = await submit_job(
                rng.choice([first, second]), principal, request(), route="native"
            )
            if index % 3 == 0:
                cancels.append(asyncio.create_task(cancel_soon(job.job_id)))
        await asyncio.gather(*cancels, freeze_first())
        for _ in range(400):
            async with second.database.reading() as conn:
                open_jobs = await conn.scalar(
                    select(generations.c.id).where(generations.c.settled.is_(False)).limit(1)
                )
            if open_jobs is None:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # let any late finisher try (and fail) to settle again

        async with second.database.reading() as conn:
            rows = (await conn.execute(select(generations))).all()
            entries = (await conn.execute(select(ledger))).all()
            kept = (await conn.execute(select(files.c.generation_id, files.c.kind))).all()
            account = await accounts.get_account(conn, account_id)
            totals = await billing.ledger_totals(conn, account_id)

    assert len(rows) == JOBS
    statuses: Counter[str] = Counter()
    outputs = Counter(g for g, kind in kept if kind == "output")
    for row in rows:
        assert row.settled, row
        assert row.status in ("completed", "failed")
        mine = [e for e in entries if e.generation_id == row.id]
        kinds = Counter(e.kind for e in mine)
        assert kinds["reserve"] == 1 and kinds["capture"] <= 1 and kinds["release"] <= 1, kinds
        held = sum(e.reserved_delta for e in mine if e.kind == "reserve")
        assert sum(-e.reserved_delta for e in mine if e.kind != "reserve") == held
        charged = -sum(e.reserved_delta for e in mine if e.kind == "capture")
        assert charged == row.credits_charged
        if row.status == "completed":
            assert charged > 0 and outputs[row.id] == 1
        else:
            assert charged == 0 and outputs[row.id] == 0
            statuses[row.error["type"]] += 1
        statuses[row.status] += 1
    assert (account.balance, account.reserved) == (totals.balance, totals.reserved)
    assert account.reserved == 0
    assert account.balance == 10_000 - sum(row.credits_charged for row in rows)
    # the races really happened: some of each ending
    assert statuses["completed"] and statuses["cancelled"] and statuses["deadline_exceeded"], (
        statuses
    )
