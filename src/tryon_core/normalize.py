"""Normalize what a route received into the canonical :class:`TryOnRequest`.

The native endpoint takes JSON (image URLs or data URLs) or multipart (files or URLs). Both go
through :func:`from_native`, so the two encodings of one request are the same request, and a
form's text fields are read by the JSON form's rules (:func:`form_options`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeVar, cast

import msgspec
import msgspec.inspect

from tryon_core.errors import InvalidRequest, echo
from tryon_core.request import ImageSource, TryOnRequest

__all__ = [
    "MAX_MODELS",
    "NativeOptions",
    "form_options",
    "from_native",
    "parse_json",
    "validation_message",
    "validation_param",
]

MAX_MODELS = 10
MAX_OPTIONS = 32

ClientOptions = Annotated[
    dict[Annotated[str, msgspec.Meta(min_length=1, max_length=64)], Any],
    msgspec.Meta(max_length=MAX_OPTIONS),
]
"""A request's per-model options as sent: at most 32, names of 1 to 64 characters."""


class NativeOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every field of ``POST /api/v1/tryon`` except the images."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "auto"
    models: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=200)]],
        msgspec.Meta(max_length=MAX_MODELS),
    ] = msgspec.field(default_factory=list)
    category: Literal["auto", "tops", "bottoms", "one-pieces", "apparel"] = "auto"
    prompt: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=4)] = 1
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)] | None = None
    output_format: Literal["png", "jpeg", "webp"] = "png"
    mode: Literal["sync", "async"] = "sync"
    webhook_url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)] | None = None
    """Async jobs only: where to POST the job's final status."""
    options: ClientOptions = msgspec.field(default_factory=dict)
    """Per-model options (``GET /api/v1/models`` lists each model's): checked when planned."""


_JSON_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
"""What JSON calls an integer: no ``+``, no leading zero, no fraction, exponent or space."""


def _is_integer(kind: msgspec.inspect.Type) -> bool:
    if isinstance(kind, msgspec.inspect.UnionType):
        return any(isinstance(member, msgspec.inspect.IntType) for member in kind.types)
    return isinstance(kind, msgspec.inspect.IntType)


_OPTIONS = cast(msgspec.inspect.StructType, msgspec.inspect.type_info(NativeOptions))
_INTEGER_FIELDS = frozenset(field.name for field in _OPTIONS.fields if _is_integer(field.type))


def form_options(fields: dict[str, str | list[str]]) -> NativeOptions:
    """The options of a multipart form, whose values are all text, by the JSON form's rules.

    An integer field (``n``, ``seed``) takes what a JSON integer is: ``2``, never ``2.0``,
    ``2e0``, ``+2``, ``02`` or `` 2``. Every other rule is the JSON form's, strictly.
    """
    typed: dict[str, Any] = dict(fields)
    if isinstance(fields.get("options"), str):
        typed["options"] = _form_object("options", cast(str, fields["options"]))
    for name in _INTEGER_FIELDS & fields.keys():
        value = fields[name]
        if isinstance(value, str):
            typed[name] = _form_integer(name, value)
    try:
        return msgspec.convert(typed, NativeOptions)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(validation_message(exc), param=validation_param(exc)) from None


def _form_object(name: str, text: str) -> Any:
    """A form field holding a JSON object (``options``), as its JSON text."""
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        raise InvalidRequest(
            f'{name} must be a JSON object, such as {{"mode": "quality"}}.', param=name
        ) from None
    return value


def _form_integer(name: str, text: str) -> int:
    if not _JSON_INTEGER.fullmatch(text):
        raise InvalidRequest(
            f"{name} must be an integer in plain decimal digits, such as 2.", param=name
        )
    try:
        return msgspec.json.decode(text, type=int)
    except msgspec.ValidationError:  # more digits than any integer field takes
        raise InvalidRequest(f"{name} is out of range.", param=name) from None


def from_native(
    options: NativeOptions,
    person: Sequence[ImageSource],
    garments: Sequence[ImageSource],
    *,
    max_garments: int,
) -> TryOnRequest:
    if len(person) != 1:
        raise InvalidRequest(
            f"person_images takes exactly one image, got {len(person)}.", param="person_images"
        )
    if not garments:
        raise InvalidRequest("garment_images needs at least one image.", param="garment_images")
    if len(garments) > max_garments:
        raise InvalidRequest(
            f"garment_images takes at most {max_garments} images, got {len(garments)}.",
            param="garment_images",
        )
    return TryOnRequest(
        person=person[0],
        garments=tuple(garments),
        model=options.model.strip(),
        models=tuple(m.strip() for m in options.models),
        category="auto" if options.category == "apparel" else options.category,
        prompt=(options.prompt or "").strip() or None,
        n=options.n,
        seed=options.seed,
        output_format=options.output_format,
        mode=options.mode,
        options=options.options,
    )


def url_sources(value: Any, field: str) -> list[ImageSource]:
    """A JSON image field: one URL string or a list of them."""
    items = value if isinstance(value, list) else [value]
    return [ImageSource(param=f"{field}[{i}]", url=url) for i, url in enumerate(items)]


T = TypeVar("T")


def parse_json(body: bytes, type_: type[T]) -> T:
    """A JSON body as ``type_``, or 400 ``invalid_request`` naming the field at fault."""
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(validation_message(exc), param=validation_param(exc)) from None
    except msgspec.DecodeError:
        raise InvalidRequest("The body is not valid JSON.") from None
    except RecursionError:  # msgspec's own depth guard: a body of [[[[... or {"a":{"a":...
        raise InvalidRequest("The body is not valid JSON: it is nested too deeply.") from None


def validation_param(error: msgspec.ValidationError) -> str | None:
    """The field msgspec complains about, as a client would name it: ``garment_images[1]``."""
    # "- at `$.options.mode`", or for a mapping's key "- at `key` in `$.options`"
    match = re.search(r" - at `(?:key` in `)?\$\.?([^`]*)`$", str(error))
    unknown = re.search(r"unknown field `([^`]+)`", str(error))
    if unknown:  # msgspec names the object that holds it; name the field itself
        parent = match.group(1) if match else ""
        return f"{parent}.{unknown.group(1)}" if parent else unknown.group(1)
    return match.group(1) if match and match.group(1) else None


def validation_message(error: msgspec.ValidationError) -> str:
    """msgspec's message without its path, and what it quotes of the client's kept short.

    msgspec ends a message with what it quotes: an unknown field name (```name```), a value
    (``"value"``); from its first such quote to the end is the client's text.
    """
    message = re.sub(r" - at `(?:key` in `)?\$[^`]*`$", "", str(error))
    quote = message[-1:]
    start = message.find(quote) if quote in ("`", "'", '"') else -1
    if start == -1 or start == len(message) - 1:
        return message
    return f"{message[: start + 1]}{echo(message[start + 1 : -1])}{quote}"
