"""``POST /api/v1/chat/completions``: the OpenAI/OpenRouter drop-in, on the native pipeline."""

from __future__ import annotations

import base64
import re
from typing import Any

import msgspec
from litestar import Request, Response, post

from tryon_core.api.deps import GatewayDep, PrincipalDep
from tryon_core.api.disconnect import unless_disconnected
from tryon_core.api.openapi import body_operation
from tryon_core.chat import (
    AssistantMessage,
    ChatCompletion,
    ChatImage,
    ChatImageURL,
    ChatRequest,
    ChatTryOnInfo,
    ChatUsage,
    Choice,
    content_text,
    from_chat,
)
from tryon_core.errors import InvalidRequest, NoCapableModel
from tryon_core.gateway import Gateway
from tryon_core.normalize import validation_message, validation_param
from tryon_core.pipeline import Generation, generate
from tryon_core.request import TryOnRequest
from tryon_core.routing import plan


@post(
    "/api/v1/chat/completions",
    summary="Try-on as an OpenAI/OpenRouter chat completion (plain or streamed).",
    description="The user message's image_url parts are the person (first, or tagged "
    '"tryon_role": "person") and the garments; text parts are the prompt. Try-on options go '
    "in a top-level tryon object: category, output_format, image_delivery (data_url | url).",
    tags=["chat"],
    status_code=200,
    operation_class=body_operation({"application/json": ChatRequest}),
)
async def create_chat_completion(
    request: Request[Any, Any, Any],
    gateway: GatewayDep,
    principal: PrincipalDep,
) -> Response[Any]:
    chat = parse(await request.body())
    tryon = from_chat(chat, max_garments=gateway.settings.images.max_garments)
    generation = await unless_disconnected(request, run(gateway, principal, tryon))
    return Response(completion(gateway, chat, generation), headers=headers(generation))


def parse(body: bytes) -> ChatRequest:
    try:
        return msgspec.json.decode(body, type=ChatRequest)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(validation_message(exc), param=_param(exc)) from None
    except msgspec.DecodeError:
        raise InvalidRequest("The body is not valid JSON.") from None


def _param(exc: msgspec.ValidationError) -> str | None:
    """``validation_param``, with a nested unknown field named in full: ``tryon.surprise``."""
    param = validation_param(exc)
    unknown = re.search(r"unknown field `([^`]+)` - at `\$.", str(exc))
    return f"{param}.{unknown.group(1)}" if unknown and param else param


async def run(gateway: Gateway, principal: PrincipalDep, tryon: TryOnRequest) -> Generation:
    """The native pipeline; a 422 that only ``n`` causes names ``n``."""
    try:
        return await generate(gateway, principal, tryon, route="chat")
    except NoCapableModel as exc:
        if exc.param is None and tryon.n > 1 and _plans(gateway, tryon, n=1):
            exc.param = "n"
        raise


def _plans(gateway: Gateway, tryon: TryOnRequest, **change: Any) -> bool:
    try:
        plan(gateway.catalog, msgspec.structs.replace(tryon, **change), gateway.health)
    except NoCapableModel:
        return False
    return True


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
        urls = [gateway.file_url(image.file_id) for image in generation.images]
    else:
        urls = [
            f"data:{image.content_type};base64,{base64.b64encode(image.data).decode()}"
            for image in generation.images
        ]
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
