"""``POST /api/v1/tryon``: the native endpoint, JSON or multipart."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from litestar.openapi import ResponseSpec

from tryon_core import idempotency
from tryon_core.api.bodies import read_body_once
from tryon_core.api.deps import GatewayDep, PrincipalDep
from tryon_core.api.disconnect import unless_disconnected
from tryon_core.api.forms import read_form
from tryon_core.api.openapi import AUTHED, EXAMPLE_IMAGE, KEYED, body_operation, errors, link
from tryon_core.api.schemas import ImageOut, JobAccepted, TryOnResponse, Usage
from tryon_core.api.scopes import INFERENCE_OR_DEMO, RATE_LIMITED
from tryon_core.errors import (
    Forbidden,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    echo,
)
from tryon_core.jobs.links import status_url, ws_url
from tryon_core.jobs.submit import submit_job
from tryon_core.normalize import (
    MAX_MODELS,
    NativeOptions,
    form_options,
    from_native,
    parse_json,
    url_sources,
)
from tryon_core.pipeline import Generation, generate
from tryon_core.request import ImageSource, TryOnRequest
from tryon_core.webhooks import validate_webhook_url

_IMAGE_FIELDS = ("person_images", "garment_images")


def form_part_limit(max_garments: int) -> int:
    """The most parts a multipart form may have: every field once, ``models`` repeated, twice
    over. A form with more is refused (413) before they are parsed."""
    return 2 * (1 + max_garments + len(NativeOptions.__struct_fields__) + MAX_MODELS)


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
    "garment_images, model, models, category, prompt, n, seed, output_format, mode, "
    'webhook_url. With "mode": "async" the answer is 202 with the job\'s id and URLs.',
    tags=["tryon"],
    status_code=200,
    responses={
        202: ResponseSpec(data_container=JobAccepted, description="Async job accepted."),
        **errors(400, 402, 404, 413, 415, 422, 429, 502, 504, *AUTHED),
    },
    security=KEYED,
    opt={**INFERENCE_OR_DEMO, **RATE_LIMITED},
    operation_class=body_operation(
        {"application/json": NativeJSON, "multipart/form-data": NativeForm},
        examples={
            "application/json": {
                "sync": {"person_images": EXAMPLE_IMAGE, "garment_images": [EXAMPLE_IMAGE]},
                "async": {
                    "person_images": [EXAMPLE_IMAGE],
                    "garment_images": EXAMPLE_IMAGE,
                    "mode": "async",
                },
            }
        },
        links={
            status: {
                "GetJob": link("GET", "/api/v1/tryon/{job_id}", job_id=f"$response.body#/{id_}"),
                "CancelJob": link(
                    "DELETE", "/api/v1/tryon/{job_id}", job_id=f"$response.body#/{id_}"
                ),
            }
            for status, id_ in ((200, "id"), (202, "jobId"))
        },
    ),
)
async def create_tryon(
    request: Request[Any, Any, Any],
    gateway: GatewayDep,
    principal: PrincipalDep,
    key: idempotency.KeyHeader = None,
) -> Response[TryOnResponse]:
    tryon, webhook = await _parse(request, gateway)
    if tryon.mode == "sync" and webhook is not None:
        raise InvalidRequest('webhook_url is for "mode": "async" only.', param="webhook_url")
    if webhook is not None and principal.kind == "demo":
        raise Forbidden(
            "A demo session cannot ask for webhooks; follow the job on its WebSocket instead.",
            param="webhook_url",
            metadata={"required_scope": "inference", "scopes": []},
        )

    async def respond() -> Response[Any]:
        if tryon.mode == "async":
            return await _submit(gateway, principal, tryon, webhook)
        generation = await generate(gateway, principal, tryon, route="native")
        return Response(_rendered(gateway, generation), status_code=200)

    return await unless_disconnected(
        request,
        idempotency.idempotent(
            gateway,
            principal,
            key,
            route="native",
            fingerprint=idempotency.fingerprint("native", tryon, webhook_url=webhook)
            if key is not None
            else "",
            run=respond,
        ),
    )


async def _submit(
    gateway: GatewayDep,
    principal: PrincipalDep,
    tryon: TryOnRequest,
    webhook: str | None,
) -> Response[Any]:
    if webhook is not None:
        webhook = validate_webhook_url(webhook, allow_hosts=gateway.settings.fetch.allow_hosts)
        await gateway.webhook_sender.vet(webhook, param="webhook_url")  # names resolving inside
    submitted = await submit_job(gateway, principal, tryon, route="native", webhook_url=webhook)
    job_id = submitted.job_id
    accepted = JobAccepted(
        jobId=job_id,
        status="queued",
        statusUrl=status_url(gateway, job_id),
        wsUrl=ws_url(gateway, job_id, submitted.deadline),
    )
    return Response(accepted, status_code=202, headers={"Location": accepted.statusUrl})


def _rendered(gateway: GatewayDep, generation: Generation) -> TryOnResponse:
    return TryOnResponse(
        id=generation.id,
        model=generation.model,
        created=int(generation.created.timestamp()),
        images=[
            ImageOut(
                url=gateway.file_url(image.file_id, key=image.key),
                content_type=image.content_type,
                width=image.width,
                height=image.height,
            )
            for image in generation.images
        ],
        usage=Usage(credits=generation.credits),
        attempts=generation.attempts,
    )


async def _parse(
    request: Request[Any, Any, Any], gateway: GatewayDep
) -> tuple[TryOnRequest, str | None]:
    """The canonical request and the webhook URL, from JSON or multipart."""
    media_type = request.content_type[0]
    max_garments = gateway.settings.images.max_garments
    if media_type == "application/json":
        parsed = parse_json(await read_body_once(request), NativeJSON)
        tryon = from_native(
            parsed,
            url_sources(parsed.person_images, "person_images"),
            url_sources(parsed.garment_images, "garment_images"),
            max_garments=max_garments,
        )
        return tryon, parsed.webhook_url
    if media_type == "multipart/form-data":
        return await _parse_form(request, max_garments, gateway.limits.max_bytes)
    raise UnsupportedMediaType(
        "Send application/json or multipart/form-data.",
        metadata={"content_type": media_type or None},
    )


async def _parse_form(
    request: Request[Any, Any, Any], max_garments: int, max_image_bytes: int
) -> tuple[TryOnRequest, str | None]:
    parts = await read_form(
        request, max_parts=request.app.multipart_form_part_limit, max_file_bytes=max_image_bytes
    )
    images: dict[str, list[ImageSource]] = {field: [] for field in _IMAGE_FIELDS}
    options: dict[str, str | list[str]] = {}
    models: list[str] = []
    for key, value in parts:
        field = key.removesuffix("[]")
        if field in images:
            param = f"{field}[{len(images[field])}]"
            if isinstance(value, bytes):
                if len(value) > max_image_bytes:
                    raise PayloadTooLarge(
                        f"{param} is larger than {max_image_bytes} bytes.",
                        type="image_too_large",
                        param=param,
                    )
                images[field].append(ImageSource(param=param, data=value))
            else:
                images[field].append(ImageSource(param=param, url=value))
        elif isinstance(value, bytes):
            raise InvalidRequest(f"Field {echo(field)!r} does not take a file.", param=field)
        elif field == "models":
            models.extend(s.strip() for s in value.split(",") if s.strip())
        elif field in options:
            raise InvalidRequest(f"Field {echo(field)!r} is given twice.", param=field)
        else:
            options[field] = value
    parsed = form_options({**options, "models": models} if models else options)
    tryon = from_native(
        parsed, images["person_images"], images["garment_images"], max_garments=max_garments
    )
    return tryon, parsed.webhook_url
