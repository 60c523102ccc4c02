"""One request, end to end: plan, intake, reserve, run with fallback, store, settle.

Every route (native, chat, and later async jobs) calls :func:`generate`. Credits are reserved
before any upstream call and settled exactly once whatever happens after: on success the
served model's price times the images returned is captured and the rest released; on any
failure, cancellation included, everything is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core import billing, key_limits, metrics
from tryon_core.accounts import Principal
from tryon_core.catalog import Entry
from tryon_core.config import LimitsConfig
from tryon_core.db.prepared import defer_insert, defer_update, insert_row, update_row
from tryon_core.db.schema import attempts as attempts_table
from tryon_core.db.schema import files, generations
from tryon_core.errors import NoCapableModel, PaymentRequired, ServiceUnavailable, TryOnError
from tryon_core.fallback import Attempt, AttemptRecorder, Produced, run_candidates
from tryon_core.gateway import Gateway
from tryon_core.idempotency_claim import link_generation
from tryon_core.ids import new_id, utcnow
from tryon_core.intake import ingest_all
from tryon_core.model_options import NO_OPTIONS, ModelOptions, check_options
from tryon_core.principals import ensure_live
from tryon_core.provider import InputImage, ProviderRequest
from tryon_core.request import TryOnRequest
from tryon_core.request_context import note_generation
from tryon_core.routing import check_inputs, plan
from tryon_core.stores import store_unavailable

__all__ = [
    "AttemptLog",
    "Generation",
    "Outcome",
    "Planned",
    "StoredImage",
    "Work",
    "discard",
    "error_record",
    "execute",
    "generate",
    "keep_file",
    "open_generation",
    "prepare",
    "record_failure",
    "record_success",
    "refusal_confirmed",
    "release_stranded",
    "remove_files",
    "save_images",
]

log = logging.getLogger("tryon.pipeline")
SYNC_SLACK = 60.0
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class StoredImage(msgspec.Struct, frozen=True, kw_only=True):
    file_id: str
    key: str
    """Where the file store keeps it."""
    content_type: str
    width: int
    height: int
    data: bytes


class Generation(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    model: str
    images: list[StoredImage]
    credits: int
    attempts: list[Attempt]
    created: datetime


class Planned(msgspec.Struct, frozen=True, kw_only=True):
    """A request checked against the catalog, its images ingested: ready to reserve and run."""

    candidates: list[Entry]
    person: InputImage
    garments: tuple[InputImage, ...]
    options: ModelOptions = NO_OPTIONS

    def reservation(self, n: int) -> int:
        """Credits to hold: the dearest candidate's price for every image asked for."""
        return max(entry.credits for entry in self.candidates) * n

    def least(self, n: int) -> int:
        """Credits the request needs at the least: the cheapest candidate's, for ``n`` images."""
        return _least(self.candidates, n)

    def longest(self) -> timedelta:
        """The longest a sync run can take: every candidate to its timeout, plus slack for
        storing and settling. A sync generation still open after that was cut short by a
        process that died; the sweeper releases it."""
        return timedelta(seconds=sum(e.config.timeout for e in self.candidates) + SYNC_SLACK)


class Work(msgspec.Struct, frozen=True, kw_only=True):
    """What one run of the candidates needs; a resumed job starts part-way through."""

    generation_id: str
    request: TryOnRequest
    candidates: list[Entry]
    person: InputImage
    garments: tuple[InputImage, ...]
    options: ModelOptions = NO_OPTIONS
    """The client's options, decoded for each candidate that declares options."""
    first_position: int = 0
    resume_task: str | None = None
    resumed: bool = False
    """The first attempt ran before, in a process that died (see Capabilities.keyed_tasks)."""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    served: Entry
    stored: list[tuple[StoredImage, str]]
    attempts: list[Attempt]

    @property
    def charge(self) -> int:
        return self.served.credits * len(self.stored)


async def generate(
    gateway: Gateway, principal: Principal, request: TryOnRequest, *, route: str
) -> Generation:
    """A synchronous generation: everything happens while the caller waits.

    Two write transactions: one opens the generation, holds its credits and writes its first
    attempt's row (so that row exists before any upstream is called); one records the outcome:
    settlement, result files, the generation's end and its succeeded attempt's end. Attempts
    that fail in between are written as they end.
    """
    planned = await prepare(gateway, principal, request)
    generation_id = new_id("gen")
    created = utcnow()
    attempts = AttemptLog(gateway, generation_id, hold_success=True)
    async with (
        refusal_confirmed(gateway, principal, planned.least(request.n)),
        gateway.database.transaction(turn=principal.account_id) as conn,
    ):
        await open_generation(
            conn,
            principal,
            request,
            generation_id=generation_id,
            reserved=planned.reservation(request.n),
            route=route,
            created=created,
            deadline_at=created + planned.longest(),
            limits=gateway.settings.limits,
            before_hold=lambda conn: attempts.open(conn, 0, planned.candidates[0], planned.options),
        )
    work = Work(
        generation_id=generation_id,
        request=request,
        candidates=planned.candidates,
        person=planned.person,
        garments=planned.garments,
        options=planned.options,
    )
    try:
        outcome = await execute(gateway, work, attempts)
        try:
            async with gateway.database.transaction(turn=principal.account_id) as conn:
                await attempts.write_held(conn)
                await ensure_live(conn, principal)  # revoked meanwhile: charge nothing
                kept = await record_success(
                    conn, gateway, generation_id, outcome, principal.account_id
                )
        except BaseException:  # not recorded (the database went away): keep no file either
            await asyncio.shield(discard(gateway, outcome))
            raise
        if not kept:  # settled meanwhile by someone else: keep nothing
            await discard(gateway, outcome)
            raise ServiceUnavailable("The generation was settled elsewhere; nothing was charged.")
    except BaseException as exc:
        await asyncio.shield(_fail(gateway, principal, generation_id, exc, attempts))
        raise
    return Generation(
        id=generation_id,
        model=outcome.served.slug,
        images=[image for image, _ in outcome.stored],
        credits=outcome.charge,
        attempts=outcome.attempts,
        created=created,
    )


async def prepare(gateway: Gateway, principal: Principal, request: TryOnRequest) -> Planned:
    """Everything that can refuse a request before credits are held: plan, intake, fit.

    What is cheap is checked first: the models, then whether the balance covers even the
    cheapest of them (a 402 before any image is fetched or decoded), then the images.
    """
    candidates = plan(gateway.catalog, request, gateway.health, allowed=principal.models)
    options = check_options(request.options, candidates)
    await _refuse_unaffordable(gateway, principal, _least(candidates, request.n))
    images = await ingest_all(
        [request.person, *request.garments],
        fetcher=gateway.fetcher,
        limits=gateway.limits,
        budget=gateway.decode_budget,
    )
    return Planned(
        candidates=_fit_inputs(candidates, request, images),
        person=images[0],
        garments=tuple(images[1:]),
        options=options,
    )


async def execute(gateway: Gateway, work: Work, recorder: AttemptRecorder) -> Outcome:
    """Run the candidates and keep the images in the file store (not yet in the database)."""
    served, produced, attempts = await run_candidates(
        work.candidates,
        lambda entry: _provider_request(entry, work),
        http=gateway.http,
        health=gateway.health,
        recorder=recorder,
        limits=gateway.output_limits,
        result_fetcher=lambda entry: gateway.result_fetcher(
            entry.provider.name, entry.config.base_url
        ),
        first_position=work.first_position,
        resume_task=work.resume_task,
        resumed=work.resumed,
        key_prefix=work.generation_id,
        options=work.options,
    )
    stored = await _store(gateway, work.generation_id, produced)
    return Outcome(served=served, stored=stored, attempts=attempts)


def _fit_inputs(
    candidates: list[Entry], request: TryOnRequest, images: list[InputImage]
) -> list[Entry]:
    params = [request.person.param, *(g.param for g in request.garments)]
    labelled = list(zip(params, images, strict=True))
    reasons = {entry.slug: check_inputs(entry, labelled) for entry in candidates}
    fitting = [entry for entry in candidates if reasons[entry.slug] is None]
    if not fitting:
        raise NoCapableModel(
            "No available model accepts these images: "
            + "; ".join(f"{slug}: {why}" for slug, why in reasons.items()),
            metadata={"reasons": reasons},
        )
    return fitting


def _provider_request(entry: Entry, work: Work) -> ProviderRequest:
    request = work.request
    return ProviderRequest(
        model=entry.slug,
        person=work.person,
        garments=work.garments,
        category=request.category,
        prompt=request.prompt if entry.model.capabilities.uses_prompt else None,
        n=request.n,
        seed=request.seed,
        output_format=request.output_format,
        options=work.options.for_model(entry),
    )


async def open_generation(
    conn: AsyncConnection,
    principal: Principal,
    request: TryOnRequest,
    *,
    generation_id: str,
    reserved: int,
    route: str,
    created: datetime,
    status: str = "processing",
    limits: LimitsConfig | None = None,
    before_hold: Callable[[AsyncConnection], Awaitable[None]] | None = None,
    **job: Any,
) -> None:
    """Insert the generation and hold its credits (402 and nothing written if they are short,
    or past the key's credit limit; 429 if the key or account already runs the most
    generations ``limits`` allow; None: no such limit). The row is inserted holding its
    reservation already; a refusal rolls the caller's transaction back, row and all.

    ``before_hold`` writes more rows of the generation (its first attempt, a job's input
    files) before the account's and key's rows are updated: those rows are every request's,
    and each statement after them keeps the others waiting until the commit."""
    note_generation(generation_id)  # the request's log line names it
    row = {
        "id": generation_id,
        "account_id": principal.account_id,
        "key_id": principal.key_id,
        "demo_session_id": principal.demo_session_id,
        "status": status,
        "route": route,
        "mode": request.mode,
        "request": request.summary(),
        "credits_reserved": reserved,
        "credits_charged": 0,
        "settled": False,
        "counted": True,
        "created_at": created,
        "updated_at": created,
        **job,
    }
    await defer_insert(conn, generations, row)  # goes with the first statement after it
    await link_generation(conn, generation_id)
    if before_hold is not None:
        await before_hold(conn)
    await billing.reserve(
        conn,
        principal.account_id,
        reserved,
        generation_id,
        demo_session_id=principal.demo_session_id,
        key_id=principal.key_id,
        made=created,
        most_active=key_limits.most_active(principal, limits or LimitsConfig()),
        key_reset=None if principal.seen is None else principal.seen.limit_reset,
        recorded=True,
    )


def _least(candidates: Sequence[Entry], n: int) -> int:
    return min(entry.credits for entry in candidates) * n


@contextlib.asynccontextmanager
async def refusal_confirmed(
    gateway: Gateway, principal: Principal, least: int
) -> AsyncIterator[None]:
    """Around the reservation: if it is refused (402) for a caller whose balance and key limit
    were checked on what an earlier request read (:mod:`tryon_core.key_cache`), the refusal a
    fresh early check would have made instead (even ``least`` credits are not there), if it
    would have made one. The answer is then the one the key cache's absence would have given."""
    try:
        yield
    except PaymentRequired:
        if principal.seen is not None and principal.seen.remembered:
            await _check_affordable(gateway, principal, least)
        raise


async def _refuse_unaffordable(gateway: Gateway, principal: Principal, credits: int) -> None:
    """402 unless the balance (and the key's or demo session's limit) covers ``credits``. An
    API key's caller is checked on what authentication read, without a read; if an earlier
    request read that (:mod:`tryon_core.key_cache`), a refusal is read afresh first: a top-up
    since then counts at once."""
    seen = principal.seen
    if seen is not None:
        try:
            billing.refuse_unaffordable(seen, credits)
            return
        except PaymentRequired:
            if not seen.remembered:
                raise
    await _check_affordable(gateway, principal, credits)


async def _check_affordable(gateway: Gateway, principal: Principal, credits: int) -> None:
    """:func:`_refuse_unaffordable` on what the database holds now."""
    async with gateway.database.reading() as conn:
        await billing.check_affordable(
            conn,
            principal.account_id,
            credits,
            demo_session_id=principal.demo_session_id,
            key_id=principal.key_id,
        )


async def _store(
    gateway: Gateway, generation_id: str, produced: list[Produced]
) -> list[tuple[StoredImage, str]]:
    saved = await save_images(
        gateway,
        produced,
        folder=f"{utcnow():%Y/%m/%d}",
        failure="The file store could not save the result; nothing was charged.",
    )
    return [
        (
            StoredImage(
                file_id=file_id,
                key=key,
                content_type=image.content_type,
                width=image.width,
                height=image.height,
                data=image.data,
            ),
            key,
        )
        for (file_id, key), image in zip(saved, produced, strict=True)
    ]


async def save_images(
    gateway: Gateway, images: Sequence[_Image], *, folder: str, failure: str
) -> list[tuple[str, str]]:
    """Put each image in the file store under a new file id: ``(file_id, key)`` for each.

    If the store fails, what was saved is deleted and ``ServiceUnavailable(failure)`` raised.
    """
    saved: list[tuple[str, str]] = []
    try:
        for image in images:
            file_id = new_id("file")
            key = f"{folder}/{file_id}.{_EXTENSIONS[image.content_type]}"
            await gateway.store.put(key, image.data)
            saved.append((file_id, key))
    except OSError as exc:  # a full disk, an S3 store away (StoreUnavailable)
        log.error("file store failed: %s", exc)
        await remove_files(gateway, [key for _, key in saved])
        raise store_unavailable(failure) from None
    return saved


async def remove_files(gateway: Gateway, keys: Sequence[str]) -> None:
    """Delete files from the file store (a missing one is no error). Best effort: a file the
    store could not delete now has no row, so the orphan sweep of retention deletes it later."""
    for key in keys:
        try:
            await gateway.store.delete(key)
        except OSError as exc:
            log.warning("file store: %s not deleted yet (retention will): %s", key, exc)


async def record_success(
    conn: AsyncConnection,
    gateway: Gateway,
    generation_id: str,
    outcome: Outcome,
    account_id: str,
    *,
    before_balances: Callable[[AsyncConnection], Awaitable[None]] | None = None,
) -> bool:
    """Capture the charge, keep the files and mark the generation completed, in the caller's
    transaction. False (and nothing written) if the generation was already settled, e.g. a
    job cancelled or past its deadline meanwhile: then the caller deletes the stored files.
    ``before_balances``: more writes of a generation that settles (a job's webhook delivery),
    made before the shared rows are updated (see :func:`tryon_core.billing.settle`)."""
    slug = outcome.served.slug
    ended = _ended(status="completed", model=slug)

    async def keep_files(conn: AsyncConnection) -> None:
        now = utcnow()
        expires = now + timedelta(hours=gateway.settings.storage.retention_hours)
        for image, key in outcome.stored:
            await keep_file(
                conn,
                image,
                file_id=image.file_id,
                key=key,
                kind="output",
                account_id=account_id,
                generation_id=generation_id,
                created=now,
                expires=expires,
            )
        if before_balances is not None:
            await before_balances(conn)

    if not await billing.settle(
        conn, generation_id, outcome.charge, model=slug, finish=ended, before_balances=keep_files
    ):
        return False
    metrics.generation_settled(outcome.served.slug)
    return True


async def record_failure(
    conn: AsyncConnection,
    generation_id: str,
    error: dict[str, Any],
    *,
    before_balances: Callable[[AsyncConnection], Awaitable[None]] | None = None,
) -> bool:
    """Release everything held and mark the generation failed, exactly once (see above)."""
    ended = _ended(status="failed", error=error)
    if not await billing.settle(
        conn, generation_id, 0, finish=ended, before_balances=before_balances
    ):
        return False
    metrics.generation_settled(None, error)
    return True


def _ended(**values: Any) -> dict[str, Any]:
    """The generation's final status (set as it settles): its progress and any lease are over."""
    now = utcnow()
    return {
        "progress": None,
        "lease_owner": None,
        "lease_until": None,
        "updated_at": now,
        "completed_at": now,
        **values,
    }


class _Image(Protocol):
    @property
    def data(self) -> bytes: ...
    @property
    def content_type(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...


async def keep_file(
    conn: AsyncConnection,
    image: _Image,
    *,
    file_id: str,
    key: str,
    kind: str,
    account_id: str,
    generation_id: str,
    created: datetime,
    expires: datetime,
) -> None:
    """Record an image saved in the file store under ``key`` (an input or an output)."""
    row = {
        "id": file_id,
        "account_id": account_id,
        "generation_id": generation_id,
        "kind": kind,
        "storage_key": key,
        "content_type": image.content_type,
        "size": len(image.data),
        "width": image.width,
        "height": image.height,
        "created_at": created,
        "expires_at": expires,
    }
    await defer_insert(conn, files, row)


def error_record(exc: BaseException) -> dict[str, Any]:
    """How a failure is kept with its generation (and shown in job bodies)."""
    if isinstance(exc, TryOnError):
        return {"type": exc.type, "message": exc.message, "code": exc.status}
    if isinstance(exc, asyncio.CancelledError):
        return {"type": "cancelled", "message": "The client went away.", "code": 499}
    return {"type": "server", "message": "Internal error.", "code": 500}


async def discard(gateway: Gateway, outcome: Outcome) -> None:
    """Delete result files that were stored but will not be kept."""
    await remove_files(gateway, [key for _, key in outcome.stored])


async def _fail(
    gateway: Gateway,
    principal: Principal,
    generation_id: str,
    exc: BaseException,
    attempts: AttemptLog,
) -> None:
    error = error_record(exc)
    try:
        async with gateway.database.transaction(turn=principal.account_id) as conn:
            await attempts.write_held(conn)
            await record_failure(conn, generation_id, error)
    except Exception as failure:
        gateway.stranded[generation_id] = error
        log.warning(
            "could not release generation %s yet (%s); the sweeper will retry",
            generation_id,
            failure,
        )


async def release_stranded(gateway: Gateway) -> int:
    """Release the sync generations :func:`_fail` could not (see ``Gateway.stranded``).

    Raises ``ServiceUnavailable`` while the database is still away; what was released stays so.
    """
    released = 0
    for generation_id, error in list(gateway.stranded.items()):
        async with gateway.database.transaction() as conn:
            await record_failure(conn, generation_id, error)
        gateway.stranded.pop(generation_id, None)
        released += 1
    return released


class AttemptLog:
    """Writes every attempt to the database as it starts, learns a task id, and ends.

    ``adopt`` maps positions to attempt rows that already exist (a resumed attempt keeps its
    row). Subclasses add to each step's transaction through :meth:`_also`.

    A sync generation saves two transactions (the base class only: its hooks do nothing):
    :meth:`open` writes the first attempt's row in the transaction that opens the generation,
    and with ``hold_success`` the end of the attempt that succeeded waits for
    :meth:`write_held`, in the transaction that records the outcome. A failed attempt's end
    is written as it happens, as before.
    """

    def __init__(
        self,
        gateway: Gateway,
        generation_id: str,
        *,
        adopt: dict[int, int] | None = None,
        hold_success: bool = False,
    ) -> None:
        self._gateway = gateway
        self._generation_id = generation_id
        self._ids: dict[int, int] = dict(adopt or {})
        self._opened: set[int] = set()
        self._hold_success = hold_success
        self._held: tuple[int, dict[str, Any]] | None = None

    async def open(
        self, conn: AsyncConnection, position: int, entry: Entry, options: ModelOptions
    ) -> None:
        """Write the row of the attempt at ``position`` now, in the caller's transaction
        (before any upstream is called), as :meth:`started` would."""
        attempt = Attempt(
            model=entry.slug, provider=entry.provider.name, options=options.attempt(entry)
        )
        await self._insert(conn, position, attempt)
        self._opened.add(position)

    async def started(self, position: int, attempt: Attempt) -> None:
        if position in self._opened:  # written as the generation opened
            self._opened.discard(position)
            return
        async with self._gateway.database.transaction() as conn:
            await self._before_start(conn, position, attempt)
            if position in self._ids:
                values = {"status": attempt.status}
                await update_row(conn, attempts_table, "id", self._ids[position], values)
            else:
                await self._insert(conn, position, attempt)
            await self._also(conn, "started", position, attempt)

    async def _insert(self, conn: AsyncConnection, position: int, attempt: Attempt) -> None:
        row = {
            "generation_id": self._generation_id,
            "position": position,
            "model": attempt.model,
            "provider": attempt.provider,
            "status": attempt.status,
            "started_at": utcnow(),
            "options": None
            if attempt.options is msgspec.UNSET
            else msgspec.json.encode(attempt.options).decode(),
        }
        result = await insert_row(conn, attempts_table, row, returning=("id",))
        self._ids[position] = int(result.rows[0].id)

    async def task(self, position: int, task_id: str, attempt: Attempt) -> None:
        await self._update(position, attempt, "submitted", task_id=task_id)

    async def state(self, position: int, state: str, attempt: Attempt) -> None:
        """The upstream's own state of the attempt: kept only where someone watches (jobs)."""

    async def finished(self, position: int, attempt: Attempt, upstream_message: str | None) -> None:
        error = attempt.error or {}
        values = {
            "status": attempt.status,
            "error_type": error.get("type"),
            "error_message": error.get("message"),
            "provider_code": error.get("code"),
            "upstream_message": (upstream_message or "")[:2000] or None,
            "finished_at": utcnow(),
        }
        if self._hold_success and attempt.status == "succeeded":
            self._held = (position, values)
            return
        await self._update(position, attempt, attempt.status, **values)

    async def write_held(self, conn: AsyncConnection) -> None:
        """Write the held end of the succeeded attempt, if any, in the caller's transaction
        (the same values each time: the outcome's transaction, or failing that, the
        release's)."""
        if self._held is not None:
            position, values = self._held
            await defer_update(conn, attempts_table, "id", self._ids[position], values)

    async def _before_start(self, conn: AsyncConnection, position: int, attempt: Attempt) -> None:
        """A hook run first in the transaction that starts an attempt (it may refuse it)."""

    async def _also(
        self, conn: AsyncConnection, step: str, position: int, attempt: Attempt
    ) -> None:
        """A hook run inside each step's transaction."""

    async def _update(self, position: int, attempt: Attempt, step: str, **values: Any) -> None:
        async with self._gateway.database.transaction() as conn:
            await update_row(conn, attempts_table, "id", self._ids[position], values)
            await self._also(conn, step, position, attempt)
