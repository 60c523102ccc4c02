"""``POST /api/v1/tryon``: the native endpoint, JSON or multipart."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, post
from litestar.datastructures import UploadFile

from tryon_core.api.deps import GatewayDep, PrincipalDep
from tryon_core.api.disconnect import unless_disconnected
from tryon_core.api.openapi import body_operation
from tryon_core.api.schemas import ImageOut, TryOnResponse, Usage
from tryon_core.errors import InvalidRequest, UnsupportedMediaType
from tryon_core.normalize import (
    NativeOptions,
    from_native,
    url_sources,
    validation_message,
    validation_param,
)
from tryon_core.pipeline import generate
from tryon_core.request import ImageSource, TryOnRequest

_IMAGE_FIELDS = ("person_images", "garment_images")


class NativeJSON(NativeOptions, kw_only=True, forbid_unknown_fields=True):
    """The JSON form: images as http(s) URLs or data URLs; one string or a list."""

    person_images: list[str] | str
    garment_images: list[str] | str


class NativeForm(NativeOptions, kw_only=True):
    """The multipart form, for the schema: image fields are file parts or URL strings."""

    person_images: Annotated[bytes, msgspec.Meta(extra_json_schema={"format": "binary"})]
    garment_images: list[Annotated[bytes, msgspec.Meta(extra_json_schema={"format": "binary"})]]


@post(
    "/api/v1/tryon",
    summary="Dress the person in the garment(s): JSON or multipart.",
    description="Send application/json (images as http(s) URLs or data URLs) or "
    "multipart/form-data (images as file parts or URL strings) with the fields person_images, "
    "garment_images, model, models, category, prompt, n, seed, output_format, mode.",
    tags=["tryon"],
    status_code=200,
    operation_class=body_operation(
        {"application/json": NativeJSON, "multipart/form-data": NativeForm}
    ),
)
async def create_tryon(
    request: Request[Any, Any, Any],
    gateway: GatewayDep,
    principal: PrincipalDep,
) -> TryOnResponse:
    tryon = await _parse(request, gateway)
    generation = await unless_disconnected(
        request, generate(gateway, principal, tryon, route="native")
    )
    return TryOnResponse(
        id=generation.id,
        model=generation.model,
        created=int(generation.created.timestamp()),
        images=[
            ImageOut(
                url=gateway.file_url(image.file_id),
                content_type=image.content_type,
                width=image.width,
                height=image.height,
            )
            for image in generation.images
        ],
        usage=Usage(credits=generation.credits),
        attempts=generation.attempts,
    )


async def _parse(request: Request[Any, Any, Any], gateway: GatewayDep) -> TryOnRequest:
    media_type = request.content_type[0]
    max_garments = gateway.settings.images.max_garments
    if media_type == "application/json":
        body = await request.body()
        try:
            parsed = msgspec.json.decode(body, type=NativeJSON)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(validation_message(exc), param=validation_param(exc)) from None
        except msgspec.DecodeError:
            raise InvalidRequest("The body is not valid JSON.") from None
        return from_native(
            parsed,
            url_sources(parsed.person_images, "person_images"),
            url_sources(parsed.garment_images, "garment_images"),
            max_garments=max_garments,
        )
    if media_type == "multipart/form-data":
        return await _parse_form(request, max_garments)
    raise UnsupportedMediaType(
        "Send application/json or multipart/form-data.",
        metadata={"content_type": media_type or None},
    )


async def _parse_form(request: Request[Any, Any, Any], max_garments: int) -> TryOnRequest:
    form = await request.form()
    images: dict[str, list[ImageSource]] = {field: [] for field in _IMAGE_FIELDS}
    options: dict[str, Any] = {}
    for key, value in form.multi_items():
        field = key.removesuffix("[]")
        if field in images:
            param = f"{field}[{len(images[field])}]"
            if isinstance(value, UploadFile):
                images[field].append(ImageSource(param=param, data=await value.read()))
            else:
                images[field].append(ImageSource(param=param, url=str(value)))
        elif isinstance(value, UploadFile):
            raise InvalidRequest(f"Field {field!r} does not take a file.", param=field)
        elif field == "models":
            options.setdefault("models", []).extend(
                s.strip() for s in str(value).split(",") if s.strip()
            )
        elif field in options:
            raise InvalidRequest(f"Field {field!r} is given twice.", param=field)
        else:
            options[field] = value
    try:
        parsed = msgspec.convert(options, NativeOptions, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(validation_message(exc), param=validation_param(exc)) from None
    return from_native(
        parsed, images["person_images"], images["garment_images"], max_garments=max_garments
    )
