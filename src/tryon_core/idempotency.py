"""``Idempotency-Key``: a retried request returns the first answer and is never charged twice.

A key is claimed per account by inserting a ``pending`` row into ``idempotency_keys``; the
primary key (account, key) lets exactly one of any number of racing requests win. The winner
runs the request and stores what it answered (status, body, content type and the route's own
headers); the others wait for that row and replay it with ``Idempotent-Replayed: true``.

    no row / expired row          claim it, run, store the answer (or drop the claim, below)
    other fingerprint or route    422 idempotency_key_reused
    pending                       poll until done (replay) or gone (claim again)
    pending for longer than the
    longest a request can take    its owner died: take the claim over and run
    done                          replay

What the winner's outcome does to the claim:

* an answer (any status) is stored and replayed for 24 hours;
* a :class:`~tryon_core.errors.TryOnError` whose status means "nothing happened" (bad input,
  auth, credits, limits, a busy or unavailable dependency: :data:`RELEASE_STATUSES`) drops the
  claim, so a corrected retry with the same key can proceed;
* any other error (a generation ran and failed: 502/504, or a 500) is stored as the exact
  envelope the client received: retrying it cannot charge twice;
* cancellation (the client went away) drops the claim: nothing was charged.

:func:`fingerprint` hashes the canonical request, never the raw body, so a multipart upload
re-sent with another boundary is the same request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Response
from litestar.params import HeaderParameter
from litestar.utils.helpers import get_enum_string_value
from sqlalchemy import and_, delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core.accounts import Principal
from tryon_core.api.errors import envelope
from tryon_core.db.conflicts import insert_on_conflict
from tryon_core.db.schema import idempotency_keys as keys_table
from tryon_core.errors import InvalidRequest, ServiceUnavailable, TryOnError
from tryon_core.gateway import Gateway
from tryon_core.ids import as_utc, utcnow
from tryon_core.request import ImageSource, TryOnRequest

__all__ = [
    "HEADER",
    "RELEASE_STATUSES",
    "REPLAYED_HEADER",
    "TTL",
    "KeyHeader",
    "fingerprint",
    "idempotent",
    "max_wait",
    "purge_expired_keys",
]

log = logging.getLogger("tryon.idempotency")

HEADER = "Idempotency-Key"
KeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name=HEADER,
        required=False,
        description="Any 1 to 255 printable ASCII characters, unique per request you mean: a "
        "retry with the same key and body within 24 hours answers the first answer again and "
        "is never charged twice (docs/idempotency.md).",
    ),
]
"""A handler parameter for the header, so that the OpenAPI document shows it."""
REPLAYED_HEADER = "Idempotent-Replayed"
TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
RELEASE_STATUSES = frozenset({400, 401, 402, 403, 404, 409, 413, 415, 422, 429, 499, 503})
"""Statuses of errors after which nothing was charged and a retry may run again."""

_POLL_FIRST = 0.05
_POLL_MAX = 1.0
_SLACK_SECONDS = 60.0
_STORED_HEADERS = ("location", "retry-after")
_VERBATIM_URL = 2048


# -- fingerprint ------------------------------------------------------------------------------


def fingerprint(route: str, request: TryOnRequest, **extra: object) -> str:
    """SHA-256 (hex) of the canonical request, the route and ``extra``.

    Images count by content: uploaded bytes by their SHA-256, URLs (data: included) verbatim.
    Where an image came from in the body (``ImageSource.param``) does not count. ``extra``
    holds what the canonical request lacks but changes the answer (chat's ``image_delivery``,
    an async ``webhook_url``); its values must be JSON-encodable.
    """
    canonical = {
        "route": route,
        "request": {
            **{name: getattr(request, name) for name in request.__struct_fields__},
            "person": _image(request.person),
            "garments": [_image(g) for g in request.garments],
        },
        "extra": extra,
    }
    return hashlib.sha256(msgspec.json.encode(canonical, order="sorted")).hexdigest()


def _image(source: ImageSource) -> dict[str, str]:
    if source.data is not None:
        return {"sha256": hashlib.sha256(source.data).hexdigest()}
    url = source.url or ""
    if len(url) <= _VERBATIM_URL:
        return {"url": url}
    return {"url_sha256": hashlib.sha256(url.encode()).hexdigest()}  # data: URLs, mostly


# -- the claim --------------------------------------------------------------------------------


class _Owned(msgspec.Struct, frozen=True):
    """This request holds the claim; ``token`` (its created_at) guards every later write."""

    token: datetime


class _Stored(msgspec.Struct, frozen=True):
    status: int
    body: bytes
    headers: dict[str, str]


async def idempotent(
    gateway: Gateway,
    principal: Principal,
    key: str | None,
    *,
    route: str,
    fingerprint: str,
    run: Callable[[], Awaitable[Response[Any]]],
) -> Response[Any]:
    """Run ``run`` at most once per (account, key) within :data:`TTL`; replay its answer.

    ``key`` None: just ``await run()``. Otherwise the answer is rendered to bytes once and both
    the first client and every replay get exactly those bytes. ``run()`` should set its
    ``status_code`` (200 is assumed otherwise) and its ``media_type`` (JSON is assumed).
    """
    if key is None:
        return await run()
    _check(key)
    claim = await _claim(gateway, principal.account_id, key, route, fingerprint)
    if isinstance(claim, _Stored):
        return _replay(claim)
    try:
        response = await run()
        stored = _stored(response)
    except TryOnError as exc:
        if exc.status in RELEASE_STATUSES:
            await _drop(gateway, principal.account_id, key, claim)
        else:
            rendered = envelope(
                exc.status,
                exc.message,
                exc.type,
                param=exc.param,
                metadata=exc.metadata,
                retry_after=exc.retry_after,
            )
            await _finish(gateway, principal.account_id, key, claim, _stored(rendered))
        raise
    except Exception:
        await _finish(
            gateway,
            principal.account_id,
            key,
            claim,
            _stored(envelope(500, "Internal server error.", "server")),
        )
        raise
    except BaseException:  # cancelled: the client left and the pipeline released its credits
        await _drop(gateway, principal.account_id, key, claim)
        raise
    try:
        await _finish(gateway, principal.account_id, key, claim, stored)
    except ServiceUnavailable:  # the work is done and paid for: answer anyway
        log.exception("could not store the answer of an idempotent request")
    return Response(
        stored.body,
        status_code=stored.status,
        media_type=stored.headers["content-type"],
        headers={k: v for k, v in response.headers.items() if k.lower() != "content-type"},
        background=response.background,
        cookies=response.cookies,
    )


def _check(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise InvalidRequest(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            param=HEADER,
        )


def max_wait(gateway: Gateway) -> float:
    """The longest one request can run: its image fetches, then every model once, plus slack.

    A duplicate waits this long for the first request's answer at most; a claim still pending
    after it belongs to a process that died, and is taken over.
    """
    attempts = sum(entry.config.timeout for entry in gateway.catalog.entries.values())
    return gateway.settings.fetch.timeout + attempts + _SLACK_SECONDS


async def _claim(
    gateway: Gateway, account_id: str, key: str, route: str, fingerprint: str
) -> _Owned | _Stored:
    """Own the key, or wait for its owner's answer. Raises 422 on another request's key."""
    delay = _POLL_FIRST
    stale_after = timedelta(seconds=max_wait(gateway))
    while True:
        async with gateway.database.transaction() as conn:
            now = utcnow()
            if await _insert(conn, account_id, key, route, fingerprint, now):
                return _Owned(now)
        while True:
            async with gateway.database.reading() as conn:
                row = (await conn.execute(select(keys_table).where(_pk(account_id, key)))).first()
            if row is None or as_utc(row.expires_at) <= utcnow():
                break  # released, or expired meanwhile: claim again
            if row.route != route or row.fingerprint != fingerprint:
                raise InvalidRequest(
                    f"This {HEADER} was already used with a different request; "
                    "use a new key for a new request.",
                    param=HEADER,
                    status=422,
                    type="idempotency_key_reused",
                )
            if row.status == "done":
                return _Stored(row.response_status, row.response_body, row.response_headers or {})
            if utcnow() - as_utc(row.created_at) > stale_after:
                taken = await _take_over(gateway, account_id, key, row.created_at)
                if taken is not None:
                    log.warning("took over idempotency key of a request that never finished")
                    return taken
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)


async def _insert(
    conn: AsyncConnection,
    account_id: str,
    key: str,
    route: str,
    fingerprint: str,
    now: datetime,
) -> bool:
    """Replace an expired row and insert a pending one; True if this call inserted it."""
    await conn.execute(
        delete(keys_table).where(_pk(account_id, key), keys_table.c.expires_at <= now)
    )
    statement = (
        insert_on_conflict(conn, keys_table)
        .values(
            account_id=account_id,
            key=key,
            route=route,
            fingerprint=fingerprint,
            status="pending",
            created_at=now,
            expires_at=now + TTL,
        )
        .on_conflict_do_nothing(index_elements=[keys_table.c.account_id, keys_table.c.key])
        .returning(keys_table.c.key)
    )
    return (await conn.execute(statement)).first() is not None


async def _take_over(gateway: Gateway, account_id: str, key: str, seen: datetime) -> _Owned | None:
    async with gateway.database.transaction() as conn:
        now = utcnow()
        result = await conn.execute(
            update(keys_table)
            .where(_owned_by(account_id, key, _Owned(seen)))
            .values(created_at=now, expires_at=now + TTL)
        )
    return _Owned(now) if result.rowcount == 1 else None


async def _finish(
    gateway: Gateway, account_id: str, key: str, claim: _Owned, stored: _Stored
) -> None:
    async with gateway.database.transaction() as conn:
        result = await conn.execute(
            update(keys_table)
            .where(_owned_by(account_id, key, claim))
            .values(
                status="done",
                generation_id=_generation_id(stored),
                response_status=stored.status,
                response_body=stored.body,
                response_headers=stored.headers,
            )
        )
    if result.rowcount != 1:
        log.warning("an idempotency key was taken over before its answer was stored")


async def _drop(gateway: Gateway, account_id: str, key: str, claim: _Owned) -> None:
    """Release the claim; shielded, so that a second cancellation cannot leave it pending."""

    async def drop() -> None:
        async with gateway.database.transaction() as conn:
            await conn.execute(delete(keys_table).where(_owned_by(account_id, key, claim)))

    task = asyncio.ensure_future(drop())
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(task)


def _pk(account_id: str, key: str) -> Any:
    return and_(keys_table.c.account_id == account_id, keys_table.c.key == key)


def _owned_by(account_id: str, key: str, claim: _Owned) -> Any:
    return and_(
        _pk(account_id, key),
        keys_table.c.status == "pending",
        keys_table.c.created_at == claim.token,
    )


# -- stored answers ---------------------------------------------------------------------------


def _stored(response: Response[Any]) -> _Stored:
    """The response as bytes, exactly as Litestar would send them, with the headers to replay."""
    media_type = get_enum_string_value(response.media_type or MediaType.JSON)
    headers = {"content-type": media_type}
    for name, value in response.headers.items():
        if name.lower().startswith("x-tryon-") or name.lower() in _STORED_HEADERS:
            headers[name] = value
    return _Stored(
        status=response.status_code or 200,
        body=response.render(response.content, media_type),
        headers=headers,
    )


def _replay(stored: _Stored) -> Response[bytes]:
    headers = {k: v for k, v in stored.headers.items() if k != "content-type"}
    return Response(
        stored.body,
        status_code=stored.status,
        media_type=stored.headers.get("content-type", MediaType.JSON),
        headers=headers | {REPLAYED_HEADER: "true"},
    )


def _generation_id(stored: _Stored) -> str | None:
    """The generation (or job) the answer is about, for operators: a header, else body ``id``."""
    found = _header(stored.headers, "x-tryon-generation")
    if found is None and stored.status < 300:
        with contextlib.suppress(msgspec.DecodeError):
            body = msgspec.json.decode(stored.body)
            if isinstance(body, dict) and isinstance(body.get("id"), str):
                found = body["id"]
    return found if found and len(found) <= 40 else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


# -- retention --------------------------------------------------------------------------------


async def purge_expired_keys(gateway: Gateway, *, batch: int = 1000) -> int:
    """Delete up to ``batch`` expired keys; returns how many. Call until it returns 0."""
    expired = (
        select(keys_table.c.account_id, keys_table.c.key)
        .where(keys_table.c.expires_at <= utcnow())
        .limit(batch)
    )
    async with gateway.database.transaction() as conn:
        result = await conn.execute(
            delete(keys_table).where(tuple_(keys_table.c.account_id, keys_table.c.key).in_(expired))
        )
    return int(result.rowcount)
