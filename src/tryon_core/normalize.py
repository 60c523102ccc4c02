"""Normalize what a route received into the canonical :class:`TryOnRequest`.

The native endpoint takes JSON (image URLs or data URLs) or multipart (files or URLs). Both go
through :func:`from_native`, so the two encodings of one request are the same request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec

from tryon_core.errors import InvalidRequest
from tryon_core.request import ImageSource, TryOnRequest

__all__ = ["MAX_MODELS", "NativeOptions", "from_native", "validation_param"]

MAX_MODELS = 10


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
    )


def url_sources(value: Any, field: str) -> list[ImageSource]:
    """A JSON image field: one URL string or a list of them."""
    items = value if isinstance(value, list) else [value]
    return [ImageSource(param=f"{field}[{i}]", url=url) for i, url in enumerate(items)]


def validation_param(error: msgspec.ValidationError) -> str | None:
    """The field msgspec complains about, as a client would name it: ``garment_images[1]``."""
    match = re.search(r" - at `\$\.?(.*)`$", str(error))
    unknown = re.search(r"unknown field `([^`]+)`", str(error))
    if unknown:  # msgspec names the object that holds it; name the field itself
        parent = match.group(1) if match else ""
        return f"{parent}.{unknown.group(1)}" if parent else unknown.group(1)
    return match.group(1) if match and match.group(1) else None


def validation_message(error: msgspec.ValidationError) -> str:
    return re.sub(r" - at `\$[^`]*`$", "", str(error))
