"""``POST /api/v1/chat/completions``: the OpenAI/OpenRouter drop-in, on the native pipeline.

Streaming (``"stream": true``) runs the same :func:`generate` in a task. Whatever fails within
``HOLD_SECONDS`` (bad input, unknown model, no credits: all checked before any upstream call)
is an ordinary HTTP error. After that the 200 and the event stream begin: a comment line
``: TRYON PROCESSING`` every ``KEEPALIVE_SECONDS`` while the models work, then the result
chunks, or one error chunk. Fallback happens before any result chunk, so it stays invisible.
A client that leaves mid-stream has its work cancelled, as on the plain route: every
reserved credit is released and nothing is charged.

A plain request may carry ``Idempotency-Key`` (:mod:`tryon_core.idempotency`); a streamed one
is refused with it, since a stream cannot be replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.response import Stream

from tryon_core import b64, idempotency
from tryon_core.accounts import Principal
from tryon_core.api.bodies import read_body_once
from tryon_core.api.deps import GatewayDep, PrincipalDep
from tryon_core.api.disconnect import unless_disconnected
from tryon_core.api.errors import ErrorBody
from tryon_core.api.openapi import AUTHED, EXAMPLE_IMAGE, KEYED, SSE_EVENT, body_operation, errors
from tryon_core.api.scopes import INFERENCE, RATE_LIMITED
from tryon_core.chat import (
    AssistantMessage,
    ChatChunk,
    ChatCompletion,
    ChatImage,
    ChatImageURL,
    ChatRequest,
    ChatTryOnInfo,
    ChatUsage,
    Choice,
    ChunkChoice,
    Delta,
    content_text,
    from_chat,
)
from tryon_core.errors import InvalidRequest, NoCapableModel, TryOnError
from tryon_core.gateway import Gateway
from tryon_core.ids import new_id
from tryon_core.normalize import parse_json
from tryon_core.pipeline import Generation, StoredImage, generate
from tryon_core.principals import ensure_live
from tryon_core.request import TryOnRequest

log = logging.getLogger("tryon.api")

HOLD_SECONDS = 1.0
KEEPALIVE_SECONDS = 3.0
KEEPALIVE = b": TRYON PROCESSING\n\n"
DONE = b"data: [DONE]\n\n"
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_abandoned: set[asyncio.Future[Generation]] = set()


@post(
    "/api/v1/chat/completions",
    summary="Try-on as an OpenAI/OpenRouter chat completion (plain or streamed).",
    description="The user message's image_url parts are the person (first, or tagged "
    '"tryon_role": "person") and the garments; text parts are the prompt. Try-on options go '
    "in a top-level tryon object: category, output_format, image_delivery (data_url | url).",
    tags=["chat"],
    status_code=200,
    responses=errors(400, 402, 404, 413, 415, 422, 429, 502, 504, *AUTHED),
    security=KEYED,
    opt={**INFERENCE, **RATE_LIMITED},
    operation_class=body_operation(
        {"application/json": ChatRequest},
        examples={
            "application/json": {
                "tryon": {
                    "model": "auto",
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {"type": "image_url", "image_url": {"url": EXAMPLE_IMAGE}},
                                {"type": "image_url", "image_url": {"url": EXAMPLE_IMAGE}},
                            ],
                        }
                    ],
                }
            }
        },
        answers={200: {"application/json": ChatCompletion, "text/event-stream": SSE_EVENT}},
    ),
)
async def create_chat_completion(
    request: Request[Any, Any, Any],
    gateway: GatewayDep,
    principal: PrincipalDep,
    key: idempotency.KeyHeader = None,
) -> Response[Any]:
    chat = parse(await read_body_once(request))
    tryon = from_chat(chat, max_garments=gateway.settings.images.max_garments)
    # The images live in ``tryon`` alone from here (intake lets their text go once read); the
    # reply needs none of the messages.
    chat.messages = []
    if chat.stream:
        if key is not None:
            raise InvalidRequest(
                f"{idempotency.HEADER} is not supported on streamed completions (a stream "
                'cannot be replayed): drop the header or send "stream": false.',
                param=idempotency.HEADER,
            )
        return await stream(request, gateway, principal, chat, tryon)

    served: list[Generation] = []

    async def respond() -> Response[Any]:
        generation = await run(gateway, principal, tryon)
        served.append(generation)
        return Response(
            completion(gateway, chat, generation),
            status_code=200,
            media_type=MediaType.JSON,
            headers=headers(generation),
        )

    return await unless_disconnected(
        request,
        idempotency.idempotent(
            gateway,
            principal,
            key,
            route="chat",
            fingerprint=_fingerprint(chat, tryon) if key is not None else "",
            run=respond,
            compact=lambda body: _by_reference(body, served),
        ),
    )


def _by_reference(body: bytes, served: list[Generation]) -> bytes:
    """The answer as kept for replays: each inlined image becomes a reference to its file."""
    for generation in served:
        for image in generation.images:
            body = body.replace(
                _data_url(image).encode(),
                idempotency.file_reference(image.content_type, image.file_id).encode(),
            )
    return body


def _data_url(image: StoredImage) -> str:
    return f"data:{image.content_type};base64,{b64.encode(image.data)}"


def _fingerprint(chat: ChatRequest, tryon: TryOnRequest) -> str:
    """What makes two chat requests one: the try-on, plus what shapes the reply."""
    return idempotency.fingerprint(
        "chat",
        tryon,
        image_delivery=chat.options.image_delivery,
        wants_text=chat.wants_text,
    )


async def stream(
    request: Request[Any, Any, Any],
    gateway: Gateway,
    principal: PrincipalDep,
    chat: ChatRequest,
    tryon: TryOnRequest,
) -> Response[Any]:
    task = asyncio.ensure_future(run(gateway, principal, tryon))
    try:
        await unless_disconnected(request, asyncio.wait({task}, timeout=HOLD_SECONDS))
    except BaseException:
        _abandon(task)
        raise
    extra = {}
    if task.done():
        extra = headers(task.result())  # a failure this early is a plain HTTP error
    return Stream(
        events(gateway, chat, task, principal=principal),
        media_type="text/event-stream",
        headers=_SSE_HEADERS | extra,
    )


async def events(
    gateway: Gateway, chat: ChatRequest, task: asyncio.Future[Generation], *, principal: Principal
) -> AsyncIterator[bytes]:
    """The stream's body. Its key is checked at every keep-alive: revoked, the work stops
    (nothing is charged) and the stream ends with the error."""
    try:
        while not task.done():
            yield KEEPALIVE
            await asyncio.wait({task}, timeout=KEEPALIVE_SECONDS)
            if not task.done():
                try:
                    async with gateway.database.reading() as conn:
                        await ensure_live(conn, principal)
                except TryOnError as exc:
                    _abandon(task)
                    yield _sse(_error_chunk(chat, exc))
                    yield DONE
                    return
        try:
            generation = task.result()
        except TryOnError as exc:
            yield _sse(_error_chunk(chat, exc))
        except Exception:
            log.exception("a streamed chat completion failed")
            yield _sse(_error_chunk(chat, TryOnError("Internal server error.")))
        else:
            for chunk in chunks(gateway, chat, generation):
                yield _sse(chunk)
        yield DONE
    finally:
        _abandon(task)


def _abandon(task: asyncio.Future[Generation]) -> None:
    """Cancel unfinished work (the pipeline then releases its credits) and let it wind down."""
    if task.done():
        return
    task.cancel()
    _abandoned.add(task)
    task.add_done_callback(_reap)


def _reap(task: asyncio.Future[Generation]) -> None:
    _abandoned.discard(task)
    with contextlib.suppress(BaseException):
        task.result()


def chunks(gateway: Gateway, chat: ChatRequest, generation: Generation) -> list[ChatChunk]:
    """The image chunk, the finish chunk, the usage chunk: OpenRouter's order."""
    reply = message(gateway, chat, generation)

    def chunk(choices: list[ChunkChoice], **extra: Any) -> ChatChunk:
        return ChatChunk(
            id=generation.id,
            object="chat.completion.chunk",
            created=int(generation.created.timestamp()),
            model=generation.model,
            choices=choices,
            **extra,
        )

    return [
        chunk(
            [
                ChunkChoice(
                    delta=Delta(role="assistant", content=reply.content or "", images=reply.images)
                )
            ]
        ),
        chunk(
            [
                ChunkChoice(
                    delta=Delta(role="assistant", content=""),
                    finish_reason="stop",
                    native_finish_reason="stop",
                )
            ]
        ),
        chunk(
            [],
            usage=ChatUsage(credits=generation.credits),
            tryon=ChatTryOnInfo(credits=generation.credits, attempts=generation.attempts),
        ),
    ]


def _error_chunk(chat: ChatRequest, exc: TryOnError) -> ChatChunk:
    """OpenRouter's in-band error: the envelope at top level and ``finish_reason: "error"``."""
    if exc.status >= 500 and exc.status not in (502, 503, 504):
        log.error("streamed request failed: %s", exc.message)
    body = ErrorBody(
        code=exc.status, message=exc.message, type=exc.type, param=exc.param, metadata=exc.metadata
    )
    return ChatChunk(
        id=new_id("gen"),
        object="chat.completion.chunk",
        created=int(time.time()),
        model=chat.model,
        choices=[ChunkChoice(delta=Delta(content=""), finish_reason="error")],
        error=msgspec.to_builtins(body),
    )


def _sse(chunk: ChatChunk) -> bytes:
    return b"data: " + msgspec.json.encode(chunk) + b"\n\n"


def parse(body: bytes) -> ChatRequest:
    return parse_json(body, ChatRequest)


_CHAT_PARAMS = {"garment_images": "messages", "category": "tryon.category", "n": "n"}


async def run(gateway: Gateway, principal: PrincipalDep, tryon: TryOnRequest) -> Generation:
    """The native pipeline; a field the planner names is named as the chat form spells it."""
    try:
        return await generate(gateway, principal, tryon, route="chat")
    except NoCapableModel as exc:
        exc.param = _CHAT_PARAMS.get(exc.param or "", exc.param)
        raise


def completion(gateway: Gateway, chat: ChatRequest, generation: Generation) -> ChatCompletion:
    return ChatCompletion(
        id=generation.id,
        created=int(generation.created.timestamp()),
        model=generation.model,
        choices=[Choice(message=message(gateway, chat, generation))],
        usage=ChatUsage(credits=generation.credits),
        tryon=ChatTryOnInfo(credits=generation.credits, attempts=generation.attempts),
    )


def message(gateway: Gateway, chat: ChatRequest, generation: Generation) -> AssistantMessage:
    if chat.options.image_delivery == "url":
        urls = [gateway.file_url(image.file_id, key=image.key) for image in generation.images]
    else:
        urls = [_data_url(image) for image in generation.images]
    return AssistantMessage(
        content=content_text(len(urls), wants_text=chat.wants_text),
        images=[ChatImage(image_url=ChatImageURL(url=url)) for url in urls],
    )


def headers(generation: Generation) -> dict[str, str]:
    return {
        "X-Tryon-Generation": generation.id,
        "X-Tryon-Model": generation.model,
        "X-Tryon-Credits": str(generation.credits),
        "X-Tryon-Attempts": ", ".join(f"{a.model}={a.status}" for a in generation.attempts),
    }
