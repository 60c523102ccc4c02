"""The OpenAI/OpenRouter chat form of a try-on: wire types and normalization.

``POST /api/v1/chat/completions`` takes OpenAI's chat schema. :func:`from_chat` turns it into
the same canonical :class:`TryOnRequest` the native route builds, through the same
:func:`~tryon_core.normalize.from_native`, so the two forms of one request are one request.

Roles of the images, in the user messages' ``image_url`` parts, in order:

* a part tagged ``"tryon_role": "person"`` is the person; one at most;
* a part tagged ``"tryon_role": "garment"`` is a garment;
* untagged parts fill what is left in order: the first untagged image is the person unless
  a part is tagged person; every other untagged image is a garment.

Garments keep their order of appearance. Text parts of the user messages, joined by a blank
line, are the prompt; system, developer, assistant and tool messages carry no try-on input
(their text is ignored; an image in them is an error).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from tryon_core.errors import InvalidRequest
from tryon_core.fallback import Attempt
from tryon_core.normalize import MAX_MODELS, ClientOptions, NativeOptions, from_native
from tryon_core.request import ImageSource, TryOnRequest

__all__ = [
    "ChatChunk",
    "ChatCompletion",
    "ChatImage",
    "ChatRequest",
    "ChatTryOn",
    "ChatTryOnInfo",
    "ChatUsage",
    "Choice",
    "ChunkChoice",
    "Delta",
    "content_text",
    "from_chat",
]

MAX_PROMPT = 4000
Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


# -- request ----------------------------------------------------------------------------------


class ImageURL(msgspec.Struct, kw_only=True):
    url: str | None = None
    tryon_role: Literal["person", "garment"] | None = None


class TextPart(msgspec.Struct, kw_only=True, tag_field="type", tag="text"):
    text: str = ""


class ImagePart(msgspec.Struct, kw_only=True, tag_field="type", tag="image_url"):
    image_url: ImageURL | str | None = None
    tryon_role: Literal["person", "garment"] | None = None


class ChatMessage(msgspec.Struct, kw_only=True):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart | ImagePart] | None = None


class ChatTryOn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Try-on options with no OpenAI field; SDKs send them through ``extra_body``."""

    category: Literal["auto", "tops", "bottoms", "one-pieces", "apparel"] = "auto"
    output_format: Literal["png", "jpeg", "webp"] = "png"
    image_delivery: Literal["data_url", "url"] = "data_url"
    options: ClientOptions = msgspec.field(default_factory=dict)
    """Per-model options, as ``options`` of ``POST /api/v1/tryon``."""


class ChatRequest(msgspec.Struct, kw_only=True):
    """OpenAI's chat request; fields that do not apply to try-on are accepted and ignored."""

    messages: Annotated[list[ChatMessage], msgspec.Meta(min_length=1)]
    model: Slug = "auto"
    models: Annotated[list[Slug], msgspec.Meta(max_length=MAX_MODELS)] | None = None
    modalities: list[str] | None = None
    stream: bool | None = None
    n: Annotated[int, msgspec.Meta(ge=1)] | None = None
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)] | None = None
    user: str | None = None
    tryon: ChatTryOn | None = None

    @property
    def options(self) -> ChatTryOn:
        return self.tryon or ChatTryOn()

    @property
    def wants_text(self) -> bool:
        return self.modalities is None or "text" in self.modalities


def from_chat(chat: ChatRequest, *, max_garments: int) -> TryOnRequest:
    """The canonical request; raises InvalidRequest naming the offending field or part."""
    if chat.modalities is not None and (
        "image" not in chat.modalities or not set(chat.modalities) <= {"image", "text"}
    ):
        raise InvalidRequest(
            'modalities must be ["image"] or ["image", "text"]: try-on returns images.',
            param="modalities",
            status=422,
            type="unsupported_modalities",
        )
    users = [i for i, m in enumerate(chat.messages) if m.role == "user"]
    if not users:
        raise InvalidRequest("No user message: send one with the images.", param="messages")
    texts: list[str] = []
    tagged_person: ImageSource | None = None
    roles: list[tuple[str | None, ImageSource]] = []
    for i, message in enumerate(chat.messages):
        parts = message.content if isinstance(message.content, list) else []
        for j, part in enumerate(parts):
            where = f"messages[{i}].content[{j}]"
            if isinstance(part, TextPart):
                if message.role == "user" and part.text.strip():
                    texts.append(part.text)
                continue
            if message.role != "user":
                raise InvalidRequest(
                    f"Only user messages carry images; this one is a {message.role} message.",
                    param=where,
                )
            role, source = _image(part, f"{where}.image_url")
            if role == "person":
                if tagged_person is not None:
                    raise InvalidRequest(
                        f"Only one image can be the person; {tagged_person.param} already is.",
                        param=f"{where}.tryon_role",
                    )
                tagged_person = source
            roles.append((role, source))
        if message.role == "user" and isinstance(message.content, str) and message.content.strip():
            texts.append(message.content)
    content = f"messages[{users[-1]}].content"
    person = tagged_person
    garments: list[ImageSource] = []
    for role, source in roles:
        if role is None and person is None:
            person = source
        elif role != "person":
            garments.append(source)
    if person is None:
        raise InvalidRequest(
            "No person image: add an image_url part with the photo of the person.",
            param=content,
        )
    if not garments:
        raise InvalidRequest(
            "No garment image: add an image_url part for each garment.", param=content
        )
    if len(garments) > max_garments:
        raise InvalidRequest(
            f"At most {max_garments} garment images, got {len(garments)}.",
            param=garments[max_garments].param,
        )
    prompt = "\n\n".join(texts)
    if len(prompt) > MAX_PROMPT:
        raise InvalidRequest(f"The text is longer than {MAX_PROMPT} characters.", param=content)
    options = chat.options
    return from_native(
        NativeOptions(
            model=chat.model,
            models=list(chat.models or ()),
            category=options.category,
            prompt=prompt or None,
            n=chat.n or 1,
            seed=chat.seed,
            output_format=options.output_format,
            options=options.options,
        ),
        [person],
        garments,
        max_garments=max_garments,
    )


def _image(part: ImagePart, param: str) -> tuple[str | None, ImageSource]:
    image = part.image_url
    url = image.url if isinstance(image, ImageURL) else image
    inner = image.tryon_role if isinstance(image, ImageURL) else None
    if not url or not url.strip():
        raise InvalidRequest(
            'An image_url part needs {"url": a data URL or an http(s) URL}.', param=param
        )
    if part.tryon_role and inner and part.tryon_role != inner:
        raise InvalidRequest("Two different tryon_role values on one part.", param=param)
    return part.tryon_role or inner, ImageSource(param=param, url=url.strip())


# -- response ---------------------------------------------------------------------------------


class ChatImageURL(msgspec.Struct, kw_only=True):
    url: str


class ChatImage(msgspec.Struct, kw_only=True):
    image_url: ChatImageURL
    type: Literal["image_url"] = "image_url"


class AssistantMessage(msgspec.Struct, kw_only=True):
    content: str | None
    images: list[ChatImage]
    role: Literal["assistant"] = "assistant"


class Choice(msgspec.Struct, kw_only=True):
    message: AssistantMessage
    index: int = 0
    finish_reason: str = "stop"
    native_finish_reason: str = "stop"
    logprobs: None = None


class ChatUsage(msgspec.Struct, kw_only=True):
    """OpenAI's token fields (zero: try-on has no tokens) plus the credits charged."""

    credits: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatTryOnInfo(msgspec.Struct, kw_only=True):
    credits: int
    attempts: list[Attempt]


class ChatCompletion(msgspec.Struct, kw_only=True):
    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: ChatUsage
    tryon: ChatTryOnInfo
    object: Literal["chat.completion"] = "chat.completion"
    system_fingerprint: None = None


class Delta(msgspec.Struct, kw_only=True, omit_defaults=True):
    role: Literal["assistant"] | None = None
    content: str | None = None
    images: list[ChatImage] | None = None


class ChunkChoice(msgspec.Struct, kw_only=True):
    delta: Delta
    index: int = 0
    finish_reason: str | None = None
    native_finish_reason: str | None = None


class ChatChunk(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One ``data:`` event of a streamed completion, in OpenRouter's order: the image delta,
    the ``finish_reason`` chunk, the usage chunk (``choices: []``); or one error chunk."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: ChatUsage | None = None
    tryon: ChatTryOnInfo | None = None
    error: dict[str, Any] | None = None


def content_text(count: int, *, wants_text: bool) -> str | None:
    """The assistant's short text: what OpenRouter image models say beside the image."""
    if not wants_text:
        return None
    return "Here is the try-on." if count == 1 else f"Here are {count} try-on images."
