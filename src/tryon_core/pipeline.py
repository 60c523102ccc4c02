"""One request, end to end: plan, intake, reserve, run with fallback, store, settle.

Every route (native, chat, and later async jobs) calls :func:`generate`. Credits are reserved
before any upstream call and settled exactly once whatever happens after: on success the
served model's price times the images returned is captured and the rest released; on any
failure, cancellation included, everything is released.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import insert, update

from tryon_core import billing
from tryon_core.accounts import Principal
from tryon_core.catalog import Entry
from tryon_core.db.schema import attempts as attempts_table
from tryon_core.db.schema import files, generations
from tryon_core.errors import (
    InvalidRequest,
    NoCapableModel,
    ServiceUnavailable,
    TryOnError,
)
from tryon_core.fallback import Attempt, Produced, run_candidates
from tryon_core.gateway import Gateway
from tryon_core.ids import new_id, utcnow
from tryon_core.intake import ingest_all
from tryon_core.provider import InputImage, ProviderRequest
from tryon_core.request import TryOnRequest
from tryon_core.routing import check_inputs, plan

__all__ = ["Generation", "StoredImage", "generate"]

log = logging.getLogger("tryon.pipeline")
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class StoredImage(msgspec.Struct, frozen=True, kw_only=True):
    file_id: str
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


async def generate(
    gateway: Gateway, principal: Principal, request: TryOnRequest, *, route: str
) -> Generation:
    if request.mode == "async":
        raise InvalidRequest(
            'mode "async" is not available yet on this gateway; use "sync".',
            param="mode",
            status=422,
            type="unsupported_mode",
        )
    candidates = plan(gateway.catalog, request, gateway.health)
    images = await ingest_all(
        [request.person, *request.garments], fetcher=gateway.fetcher, limits=gateway.limits
    )
    person, garments = images[0], tuple(images[1:])
    candidates = _fit_inputs(candidates, request, images)
    generation_id = new_id("gen")
    reserved = max(entry.credits for entry in candidates) * request.n
    created = utcnow()
    await _open(gateway, principal, request, generation_id, reserved, route, created)
    try:
        served, produced, attempts = await run_candidates(
            candidates,
            lambda entry: _provider_request(entry, request, person, garments),
            http=gateway.http,
            health=gateway.health,
            recorder=_Recorder(gateway, generation_id),
            limits=gateway.output_limits,
            result_fetcher=lambda entry: gateway.result_fetcher(
                entry.provider.name, entry.config.base_url
            ),
        )
        stored = await _store(gateway, principal, generation_id, produced)
        charge = served.credits * len(stored)
        await _close(gateway, generation_id, charge=charge, model=served.slug, stored=stored)
    except BaseException as exc:
        await asyncio.shield(_fail(gateway, generation_id, exc))
        raise
    return Generation(
        id=generation_id,
        model=served.slug,
        images=[image for image, _ in stored],
        credits=charge,
        attempts=attempts,
        created=created,
    )


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


def _provider_request(
    entry: Entry, request: TryOnRequest, person: InputImage, garments: tuple[InputImage, ...]
) -> ProviderRequest:
    return ProviderRequest(
        model=entry.slug,
        person=person,
        garments=garments,
        category=request.category,
        prompt=request.prompt if entry.model.capabilities.uses_prompt else None,
        n=request.n,
        seed=request.seed,
        output_format=request.output_format,
    )


async def _open(
    gateway: Gateway,
    principal: Principal,
    request: TryOnRequest,
    generation_id: str,
    reserved: int,
    route: str,
    created: datetime,
) -> None:
    async with gateway.database.transaction() as conn:
        await conn.execute(
            insert(generations).values(
                id=generation_id,
                account_id=principal.account_id,
                key_id=principal.key_id,
                status="processing",
                route=route,
                request=request.summary(),
                credits_reserved=0,
                credits_charged=0,
                settled=False,
                created_at=created,
                updated_at=created,
            )
        )
        await billing.reserve(conn, principal.account_id, reserved, generation_id)


async def _store(
    gateway: Gateway, principal: Principal, generation_id: str, produced: list[Produced]
) -> list[tuple[StoredImage, str]]:
    stored: list[tuple[StoredImage, str]] = []
    now = utcnow()
    try:
        for image in produced:
            file_id = new_id("file")
            key = f"{now:%Y/%m/%d}/{file_id}.{_EXTENSIONS[image.content_type]}"
            await gateway.store.put(key, image.data)
            stored.append(
                (
                    StoredImage(
                        file_id=file_id,
                        content_type=image.content_type,
                        width=image.width,
                        height=image.height,
                        data=image.data,
                    ),
                    key,
                )
            )
    except OSError as exc:
        for _, key in stored:
            await gateway.store.delete(key)
        log.error("file store failed: %s", exc)
        raise ServiceUnavailable(
            "The file store could not save the result; nothing was charged."
        ) from None
    return stored


async def _close(
    gateway: Gateway,
    generation_id: str,
    *,
    charge: int,
    model: str,
    stored: list[tuple[StoredImage, str]],
) -> None:
    now = utcnow()
    expires = now + timedelta(hours=gateway.settings.storage.retention_hours)
    async with gateway.database.transaction() as conn:
        account_id = await conn.scalar(
            generations.select()
            .with_only_columns(generations.c.account_id)
            .where(generations.c.id == generation_id)
        )
        for image, key in stored:
            await conn.execute(
                insert(files).values(
                    id=image.file_id,
                    account_id=account_id,
                    generation_id=generation_id,
                    kind="output",
                    storage_key=key,
                    content_type=image.content_type,
                    size=len(image.data),
                    width=image.width,
                    height=image.height,
                    created_at=now,
                    expires_at=expires,
                )
            )
        await billing.settle(conn, generation_id, charge)
        await conn.execute(
            update(generations)
            .where(generations.c.id == generation_id)
            .values(status="completed", model=model, updated_at=now, completed_at=now)
        )


async def _fail(gateway: Gateway, generation_id: str, exc: BaseException) -> None:
    error: dict[str, Any]
    if isinstance(exc, TryOnError):
        error = {"type": exc.type, "message": exc.message, "code": exc.status}
    elif isinstance(exc, asyncio.CancelledError):
        error = {"type": "cancelled", "message": "The client went away.", "code": 499}
    else:
        error = {"type": "server", "message": "Internal error.", "code": 500}
    now = utcnow()
    try:
        async with gateway.database.transaction() as conn:
            await billing.settle(conn, generation_id, 0)
            await conn.execute(
                update(generations)
                .where(generations.c.id == generation_id, generations.c.status == "processing")
                .values(status="failed", error=error, updated_at=now, completed_at=now)
            )
    except Exception:
        log.exception("could not release generation %s; it stays reserved", generation_id)


class _Recorder:
    """Writes every attempt to the database as it starts, learns a task id, and ends."""

    def __init__(self, gateway: Gateway, generation_id: str) -> None:
        self._gateway = gateway
        self._generation_id = generation_id
        self._ids: dict[int, int] = {}

    async def started(self, position: int, attempt: Attempt) -> None:
        async with self._gateway.database.transaction() as conn:
            result = await conn.execute(
                insert(attempts_table)
                .values(
                    generation_id=self._generation_id,
                    position=position,
                    model=attempt.model,
                    provider=attempt.provider,
                    status=attempt.status,
                    started_at=utcnow(),
                )
                .returning(attempts_table.c.id)
            )
            self._ids[position] = int(result.scalar_one())

    async def task(self, position: int, task_id: str) -> None:
        await self._update(position, task_id=task_id)

    async def finished(self, position: int, attempt: Attempt, upstream_message: str | None) -> None:
        error = attempt.error or {}
        await self._update(
            position,
            status=attempt.status,
            error_type=error.get("type"),
            error_message=error.get("message"),
            provider_code=error.get("code"),
            upstream_message=(upstream_message or "")[:2000] or None,
            finished_at=utcnow(),
        )

    async def _update(self, position: int, **values: Any) -> None:
        async with self._gateway.database.transaction() as conn:
            await conn.execute(
                update(attempts_table)
                .where(attempts_table.c.id == self._ids[position])
                .values(**values)
            )
