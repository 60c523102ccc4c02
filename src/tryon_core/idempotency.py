"""``Idempotency-Key``: a retried request returns the first answer and is never charged twice.

A key is claimed per account by inserting a ``pending`` row into ``idempotency_keys``; the
primary key (account, key) lets exactly one of any number of racing requests win. The winner
runs the request and stores what it answered (status, body, content type and the route's own
headers); the others wait for that row and replay it with ``Idempotent-Replayed: true``.

    no row / expired row          claim it, run, store the answer (or drop the claim, below)
    other fingerprint or route    422 idempotency_key_reused
    pending                       poll until done (replay) or gone (claim again); still
                                  pending after IN_PROGRESS_WAIT: 409
                                  idempotency_key_in_progress with Retry-After
    pending for longer than the   its owner died: take the claim over and run, unless it had
    longest a request can take    opened a generation that was not released: then 409
                                  idempotency_answer_lost naming it, stored for good
    done                          replay

The generation a request opens is written onto its claim in the transaction that reserves
its credits (:mod:`tryon_core.idempotency_claim`), so a claim always knows what it paid for.
Claiming, dropping and finishing run to their end even when the client hangs up
(:func:`~tryon_core.uninterrupted.uninterrupted`): a disconnect can never leave a claim
pending, nor drop one whose generation was opened.

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
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Response
from litestar.params import HeaderParameter
from litestar.utils.helpers import get_enum_string_value
from sqlalchemy import and_, delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tryon_core import b64
from tryon_core.accounts import Principal
from tryon_core.api.errors import envelope, error_response
from tryon_core.db.conflicts import insert_on_conflict
from tryon_core.db.schema import files, generations
from tryon_core.db.schema import idempotency_keys as keys_table
from tryon_core.errors import InvalidRequest, NotFound, ServiceUnavailable, TryOnError
from tryon_core.gateway import Gateway
from tryon_core.idempotency_claim import Claim, current_claim, owned_by
from tryon_core.ids import as_utc, utcnow
from tryon_core.request import ImageSource, TryOnRequest
from tryon_core.stores import store_unavailable
from tryon_core.uninterrupted import uninterrupted

__all__ = [
    "HEADER",
    "IN_PROGRESS_WAIT",
    "RELEASE_STATUSES",
    "REPLAYED_HEADER",
    "TTL",
    "KeyHeader",
    "file_reference",
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

IN_PROGRESS_WAIT = 2.0
"""How long a duplicate waits for its first request's answer before a 409 with Retry-After."""
_POLL_FIRST = 0.05
_POLL_MAX = 1.0
_SLACK_SECONDS = 60.0
_STORED_HEADERS = ("location", "retry-after")
_VERBATIM_URL = 2048
_REFERENCE = "tryon-file"
_REFERENCES = re.compile(
    rb"data:([a-z]+/[a-z0-9.+-]+);" + _REFERENCE.encode() + rb",(file_[A-Za-z0-9_-]+)"
)


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
            **{
                name: getattr(request, name)
                for name in request.__struct_fields__
                # no options: the fingerprint stays what it was before requests had any
                if name != "options" or request.options
            },
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
    compact: Callable[[bytes], bytes] | None = None,
) -> Response[Any]:
    """Run ``run`` at most once per (account, key) within :data:`TTL`; replay its answer.

    ``key`` None: just ``await run()``. Otherwise the answer is rendered to bytes once and both
    the first client and every replay get exactly those bytes. ``run()`` should set its
    ``status_code`` (200 is assumed otherwise) and its ``media_type`` (JSON is assumed).
    ``compact`` shrinks the body before it is kept: a route that inlines result images
    replaces each data URL with :func:`file_reference`; replays inline them again.

    The claim's bookkeeping is never cut in half by a cancellation (a client that hangs up):
    a claim made is either dropped (nothing was charged) or finished with the answer, and a
    cancellation that arrives meanwhile takes effect once that is done.
    """
    if key is None:
        return await run()
    _check(key)
    key = _namespaced(principal, key)
    # a hang-up inside the claim's own commit lands at run()'s first await: the claim is
    # then dropped below, never left pending
    claim = await _claim(gateway, principal.account_id, key, route, fingerprint)
    if isinstance(claim, _Stored):
        return _replay(await _inline_files(gateway, principal.account_id, claim))
    reset = current_claim.set(claim)
    try:
        response = await run()
        stored = _stored(response)
    except TryOnError as exc:
        if exc.status in RELEASE_STATUSES:
            await uninterrupted(_drop(gateway, claim))
        else:
            await uninterrupted(_finish(gateway, claim, _stored(error_response(exc))))
        raise
    except Exception:
        await uninterrupted(
            _finish(gateway, claim, _stored(envelope(500, "Internal server error.", "server")))
        )
        raise
    except BaseException:  # cancelled before an answer: the pipeline released its credits
        await uninterrupted(_drop(gateway, claim))
        raise
    finally:
        current_claim.reset(reset)
    try:
        kept = (
            stored
            if compact is None
            else msgspec.structs.replace(stored, body=compact(stored.body))
        )
        await uninterrupted(_finish(gateway, claim, kept))
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


def _namespaced(principal: Principal, key: str) -> str:
    """A demo session's keys are kept apart from its account's (and other sessions'): it
    replays only its own answers. Hashed, so the stored key stays within the column."""
    if principal.demo_session_id is None:
        return key
    return f"demo:{principal.demo_session_id}:{hashlib.sha256(key.encode()).hexdigest()}"


def max_wait(gateway: Gateway) -> float:
    """The longest one request can run: its image fetches, then every model once, plus slack.

    A claim still pending after it belongs to a process that died, and is taken over.
    """
    attempts = sum(entry.config.timeout for entry in gateway.catalog.entries.values())
    return gateway.settings.fetch.timeout + attempts + _SLACK_SECONDS


async def _claim(
    gateway: Gateway, account_id: str, key: str, route: str, fingerprint: str
) -> Claim | _Stored:
    """Own the key, or get its answer: the stored one, a 409 while its first request still
    runs (after waiting :data:`IN_PROGRESS_WAIT` for it), a 422 for another request's key."""
    delay = _POLL_FIRST
    stale_after = timedelta(seconds=max_wait(gateway))
    give_up = asyncio.get_running_loop().time() + IN_PROGRESS_WAIT
    while True:
        async with gateway.database.transaction() as conn:
            now = utcnow()
            if await _insert(conn, account_id, key, route, fingerprint, now):
                return Claim(account_id, key, now)
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
                orphan = Claim(account_id, key, row.created_at)
                taken = await _take_over(gateway, orphan, row.generation_id)
                if taken is not None:
                    return taken
                continue
            if asyncio.get_running_loop().time() >= give_up:
                raise InvalidRequest(
                    f"A request with this {HEADER} is still running; retry after a moment to "
                    "get its answer (it will not run twice).",
                    param=HEADER,
                    status=409,
                    type="idempotency_key_in_progress",
                    retry_after=1,
                )
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


async def _take_over(
    gateway: Gateway, orphan: Claim, generation_id: str | None
) -> Claim | _Stored | None:
    """The claim of a request whose process died. If it had opened a generation that was not
    released, that generation stands (it may be charged): the key answers 409 naming it, for
    good, and never runs a second one. Otherwise the claim is taken over and run again.
    None if another request moved first."""
    async with gateway.database.transaction() as conn:
        settled = None
        if generation_id is not None:
            settled = (
                await conn.execute(
                    select(generations.c.settled, generations.c.credits_charged).where(
                        generations.c.id == generation_id
                    )
                )
            ).first()
        released = settled is not None and settled.settled and settled.credits_charged == 0
        if generation_id is None or released:
            now = utcnow()
            result = await conn.execute(
                update(keys_table)
                .where(owned_by(orphan))
                .values(created_at=now, expires_at=now + TTL, generation_id=None)
            )
            if result.rowcount != 1:
                return None
            log.warning("took over the idempotency key of a request that never finished")
            return Claim(orphan.account_id, orphan.key, now)
        lost = _stored(
            envelope(
                409,
                f"The first request with this {HEADER} made generation {generation_id}, but "
                "the gateway stopped before its answer was kept: read it with GET "
                f"/api/v1/tryon/{generation_id}. It was not run or charged twice.",
                "idempotency_answer_lost",
                param=HEADER,
                metadata={"generation_id": generation_id},
            )
        )
        result = await conn.execute(
            update(keys_table).where(owned_by(orphan)).values(**_done(lost))
        )
    return lost if result.rowcount == 1 else None


async def _finish(gateway: Gateway, claim: Claim, stored: _Stored) -> None:
    async with gateway.database.transaction() as conn:
        result = await conn.execute(
            update(keys_table).where(owned_by(claim)).values(**_done(stored))
        )
    if result.rowcount != 1:
        log.warning("an idempotency key was taken over before its answer was stored")


def _done(stored: _Stored) -> dict[str, Any]:
    values: dict[str, Any] = {
        "status": "done",
        "response_status": stored.status,
        "response_body": stored.body,
        "response_headers": stored.headers,
    }
    found = _generation_id(stored)
    if found is not None:
        values["generation_id"] = found
    return values


async def _drop(gateway: Gateway, claim: Claim) -> None:
    """Release the claim: the request ran nothing that a retry could not run again."""
    async with gateway.database.transaction() as conn:
        await conn.execute(delete(keys_table).where(owned_by(claim)))


def _pk(account_id: str, key: str) -> Any:
    return and_(keys_table.c.account_id == account_id, keys_table.c.key == key)


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


def file_reference(content_type: str, file_id: str) -> str:
    """What a kept answer holds instead of a result image's data URL (see ``compact``)."""
    return f"data:{content_type};{_REFERENCE},{file_id}"


async def _inline_files(gateway: Gateway, account_id: str, stored: _Stored) -> _Stored:
    """Put the images that :func:`file_reference` stands for back into a kept answer."""
    found = {m.group(2).decode(): m for m in _REFERENCES.finditer(stored.body)}
    if not found:
        return stored
    async with gateway.database.reading() as conn:
        rows = {
            row.id: row
            for row in await conn.execute(
                select(files.c.id, files.c.storage_key).where(
                    files.c.id.in_(found), files.c.account_id == account_id
                )
            )
        }
    inlined: dict[bytes, bytes] = {}
    for file_id, match in found.items():
        row = rows.get(file_id)
        try:
            if row is None:
                raise FileNotFoundError(file_id)
            data = await gateway.store.get(row.storage_key)
        except FileNotFoundError:
            raise NotFound(
                "The image of this answer is no longer kept; its generation may still be read "
                "with GET /api/v1/tryon/{id}.",
                param=HEADER,
            ) from None
        except OSError:  # the store is away: the answer is still kept, so ask to retry
            raise store_unavailable() from None
        encoded = b64.encode(data).encode("ascii")
        inlined[match.group(0)] = b"data:" + match.group(1) + b";base64," + encoded
    body = _REFERENCES.sub(lambda m: inlined[m.group(0)], stored.body)
    return msgspec.structs.replace(stored, body=body)


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
