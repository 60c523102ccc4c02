"""Jobs: look one up, list them, cancel one, or watch one on a WebSocket.

``/api/v1/tryon/{id}/ws`` is for browsers too, which cannot set an Authorization header: it
takes the job token from the ``wsUrl`` of the 202 answer (``?token=``), or the API key (or a
demo session's token, from an origin it allows) as a subprotocol (``Sec-WebSocket-Protocol:
tryon, tryon-key.<KEY>``; the server answers ``tryon``). On connect it sends the job at once,
then each change, then the final status, and closes with 1000. Refusals are sent as an error
message and a close code of 4000 plus the HTTP status (4401, 4403, 4404). A socket on a job a
demo session opened ends when that session does, however it was opened.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any, Literal

import msgspec
from litestar import WebSocket, delete, get, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy import select

from tryon_core.accounts import Principal
from tryon_core.api.deps import GatewayDep, PrincipalDep
from tryon_core.api.errors import ErrorBody
from tryon_core.api.openapi import AUTHED, KEYED, errors
from tryon_core.api.scopes import INFERENCE, INFERENCE_OR_DEMO, authorize
from tryon_core.db.schema import generations
from tryon_core.errors import AuthenticationFailed, NotFound, TryOnError
from tryon_core.gateway import Gateway
from tryon_core.jobs.cancel import cancel_job
from tryon_core.jobs.links import verify_job_token
from tryon_core.jobs.view import TERMINAL, JobBody, JobList, list_jobs, load_job
from tryon_core.principals import ensure_live

__all__ = ["cancel", "job", "job_socket", "jobs"]

KEY_CHECK_SECONDS = 2.0
"""A socket opened with a key or a demo session checks it this often (revoked: 4401)."""
KEY_PROTOCOL = "tryon-key."


@get(
    "/api/v1/tryon/{job_id:str}",
    summary="A job (async or sync): its status, images, usage, error and attempts.",
    tags=["jobs"],
    responses=errors(404, *AUTHED),
    security=KEYED,
    opt=INFERENCE_OR_DEMO,
)
async def job(gateway: GatewayDep, principal: PrincipalDep, job_id: FromPath[str]) -> JobBody:
    async with gateway.database.reading() as conn:
        body = await load_job(
            conn,
            gateway,
            job_id,
            account_id=principal.account_id,
            demo_session_id=principal.demo_session_id,
        )
    if body is None:
        raise NotFound("No such job.", param="id")
    return body


@get(
    "/api/v1/tryon",
    summary="This account's jobs, newest first (cursor pagination).",
    tags=["jobs"],
    responses=errors(400, *AUTHED),
    security=KEYED,
    opt=INFERENCE_OR_DEMO,
)
async def jobs(
    gateway: GatewayDep,
    principal: PrincipalDep,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    cursor: FromQuery[str | None] = None,
    status: FromQuery[Literal["queued", "processing", "completed", "failed"] | None] = None,
) -> JobList:
    async with gateway.database.reading() as conn:
        return await list_jobs(
            conn,
            gateway,
            account_id=principal.account_id,
            limit=limit,
            cursor=cursor,
            status=status,
            demo_session_id=principal.demo_session_id,
        )


@delete(
    "/api/v1/tryon/{job_id:str}",
    summary="Cancel a job: a queued one at once; a processing one after its current attempt.",
    tags=["jobs"],
    status_code=200,
    responses=errors(404, *AUTHED),
    security=KEYED,
    opt=INFERENCE,
)
async def cancel(gateway: GatewayDep, principal: PrincipalDep, job_id: FromPath[str]) -> JobBody:
    return await cancel_job(gateway, principal, job_id)


class _Message(msgspec.Struct, kw_only=True, rename={"kind": "type"}):
    kind: Literal["status", "error"]
    job: JobBody | None = None
    error: ErrorBody | None = None


@websocket("/api/v1/tryon/{job_id:str}/ws", tags=["jobs"], opt=INFERENCE_OR_DEMO)
async def job_socket(socket: WebSocket[Any, Any, Any], job_id: FromPath[str]) -> None:
    gateway: Gateway = socket.app.state.gateway
    offered = [p.strip() for p in socket.scope.get("subprotocols", [])]
    await socket.accept(subprotocols="tryon" if "tryon" in offered else None)
    try:
        principal = await _authorize(gateway, socket, job_id, offered)
        await _follow(gateway, socket, job_id, principal)
    except TryOnError as exc:
        error = ErrorBody(
            code=exc.status, message=exc.message, type=exc.type, param=exc.param, metadata={}
        )
        await _send(socket, _Message(kind="error", error=error))
        await socket.close(code=4000 + exc.status, reason=exc.message[:120])
    except WebSocketDisconnect:
        return


async def _authorize(
    gateway: Gateway, socket: WebSocket[Any, Any, Any], job_id: str, offered: list[str]
) -> Principal | None:
    """Who watches: the key's (or demo session's) caller; with a job token, None (no account
    needed), or the demo session that opened the job (the socket ends with it)."""
    token = socket.query_params.get("token")
    if token is not None:
        if not verify_job_token(gateway, job_id, token):
            raise AuthenticationFailed("This job link is invalid or has expired.")
        return await _opened_by_demo(gateway, job_id)
    keys = [p[len(KEY_PROTOCOL) :] for p in offered if p.startswith(KEY_PROTOCOL)]
    authorization = socket.headers.get("authorization") or (f"Bearer {keys[0]}" if keys else "")
    return await authorize(socket, socket.route_handler.opt, authorization=authorization)


async def _opened_by_demo(gateway: Gateway, job_id: str) -> Principal | None:
    async with gateway.database.reading() as conn:
        row = (
            await conn.execute(
                select(generations.c.account_id, generations.c.demo_session_id).where(
                    generations.c.id == job_id
                )
            )
        ).first()
    if row is None or row.demo_session_id is None:
        return None
    return Principal(
        kind="demo",
        key_id=None,
        account_id=row.account_id,
        scopes=frozenset(),
        demo_session_id=row.demo_session_id,
    )


async def _follow(
    gateway: Gateway, socket: WebSocket[Any, Any, Any], job_id: str, principal: Principal | None
) -> None:
    """Send each new status until the job ends or the client leaves. The job is read on
    connect and on each of its events (from any process: see :mod:`tryon_core.jobs.events`),
    never on a timer. A socket opened with a key (or a demo session) checks it before every
    message and every KEY_CHECK_SECONDS: revoked, it closes (4401) and sends nothing more."""
    account_id = principal.account_id if principal is not None else None
    demo_session_id = principal.demo_session_id if principal is not None else None
    receiver = asyncio.ensure_future(_until_closed(socket))
    try:
        async with gateway.events.subscribe(job_id) as changed:
            sent: tuple[str, str] | None = None
            while True:
                changed.clear()
                async with gateway.database.reading() as conn:
                    if principal is not None:
                        await ensure_live(conn, principal)
                    body = await load_job(
                        conn,
                        gateway,
                        job_id,
                        account_id=account_id,
                        demo_session_id=demo_session_id,
                    )
                if body is None:
                    raise NotFound("No such job.", param="id")
                if (body.status, body.updated_at) != sent:
                    sent = (body.status, body.updated_at)
                    await _send(socket, _Message(kind="status", job=body))
                if body.status in TERMINAL:
                    await socket.close(code=1000)
                    return
                if not await _next_change(gateway, changed, receiver, principal):
                    return
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


async def _next_change(
    gateway: Gateway,
    changed: asyncio.Event,
    receiver: asyncio.Future[Any],
    principal: Principal | None,
) -> bool:
    """Wait until the job changes (True) or the client leaves (False), checking the
    principal alone (not the job) every KEY_CHECK_SECONDS meanwhile."""
    timeout = None if principal is None else KEY_CHECK_SECONDS
    while True:
        waiter = asyncio.ensure_future(changed.wait())
        done, _ = await asyncio.wait(
            {waiter, receiver}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        if receiver in done:
            return False
        if changed.is_set():
            return True
        if principal is not None:
            async with gateway.database.reading() as conn:
                await ensure_live(conn, principal)


async def _until_closed(socket: WebSocket[Any, Any, Any]) -> None:
    """Read (and ignore) what the client sends, until it goes away."""
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _send(socket: WebSocket[Any, Any, Any], message: _Message) -> None:
    await socket.send_text(msgspec.json.encode(message).decode())
