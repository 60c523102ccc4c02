"""Playground: run a try-on as an async job, charged to the account, and watch it live.

The page's script posts the form to ``POST /playground/jobs`` (cookie and CSRF header), which
submits the job exactly as ``POST /api/v1/tryon`` with ``mode=async`` would
(:func:`tryon_core.jobs.submit.submit_job`, for the console's principal), and answers ``202``
with the job's id and ``wsUrl``. The script follows the job on that WebSocket (or, failing
that, polls ``GET /playground/jobs/{id}``) until it completes or fails.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from tryon_core.api.forms import read_form
from tryon_core.api.schemas import JobAccepted
from tryon_core.console.models_view import model_rows
from tryon_core.console.option_controls import model_option_controls
from tryon_core.console.render import gateway_of, href, local_url, page
from tryon_core.console.samples import SAMPLES, sample
from tryon_core.console.session import SignedInDep
from tryon_core.errors import InvalidRequest, NotFound, PayloadTooLarge, echo
from tryon_core.jobs.links import ws_url
from tryon_core.jobs.submit import submit_job
from tryon_core.jobs.view import JobBody, load_job
from tryon_core.normalize import form_options
from tryon_core.provider import CATEGORIES
from tryon_core.request import ImageSource, TryOnRequest

__all__ = ["ROUTES"]

PAGE = {"console_page": True}
SCRIPT = {"console_page": False}
NO_STORE = {"Cache-Control": "no-store"}


@get("/playground", opt=PAGE)
async def playground(request: Request[Any, Any, Any], console: SignedInDep) -> Response[str]:
    gateway = gateway_of(request)
    return page(
        request,
        "playground.html",
        title="Playground",
        current="playground",
        models=model_rows(gateway),
        option_sets=model_option_controls(gateway),
        categories=CATEGORIES,
        samples={s.role: s for s in SAMPLES},
        max_garments=gateway.settings.images.max_garments,
        balance=console.account.balance,
    )


@get("/samples/{name:str}", opt=PAGE)
async def sample_image(name: FromPath[str]) -> Response[bytes]:
    """A bundled sample photo (public: it is in the source tree)."""
    found = sample(name)
    if found is None:
        raise NotFound("There is no such sample.")
    spec, data = found
    return Response(
        data, media_type=spec.content_type, headers={"Cache-Control": "public, max-age=86400"}
    )


@post("/playground/jobs", opt=SCRIPT, status_code=202)
async def submit(request: Request[Any, Any, Any], console: SignedInDep) -> Response[JobAccepted]:
    gateway = gateway_of(request)
    tryon = await _parse(request, max_image_bytes=gateway.limits.max_bytes)
    submitted = await submit_job(gateway, console.principal, tryon, route="console")
    job_id = submitted.job_id
    settings = gateway.settings
    body = JobAccepted(
        jobId=job_id,
        status="queued",
        statusUrl=href(settings, f"/playground/jobs/{job_id}"),
        wsUrl=ws_url(gateway, job_id, submitted.deadline),
    )
    return Response(body, status_code=202, headers=NO_STORE)


@get("/playground/jobs/{job_id:str}", opt=SCRIPT)
async def job(
    request: Request[Any, Any, Any], console: SignedInDep, job_id: FromPath[str]
) -> Response[JobBody]:
    """The job as ``GET /api/v1/tryon/{id}`` shows it (for when the WebSocket cannot open)."""
    gateway = gateway_of(request)
    async with gateway.database.reading() as conn:
        body = await load_job(conn, gateway, job_id, account_id=console.account_id)
    if body is None:
        raise NotFound("No such job.", param="id")
    for image in body.images:
        image.url = local_url(gateway.settings, image.url)
    return Response(body, headers=NO_STORE)


async def _parse(request: Request[Any, Any, Any], *, max_image_bytes: int) -> TryOnRequest:
    """The playground's form: a person (``person_image`` file or ``person_sample``), garments
    (``garment_images`` files or ``garment_sample``), ``model``, ``category`` and the model's
    ``options`` (a JSON object, as ``POST /api/v1/tryon``'s multipart form takes it)."""
    if request.content_type[0] != "multipart/form-data":
        raise InvalidRequest("Send the playground's form as multipart/form-data.")
    parts = await read_form(
        request, max_parts=request.app.multipart_form_part_limit, max_file_bytes=max_image_bytes
    )
    person: list[ImageSource] = []
    garments: list[ImageSource] = []
    fields: dict[str, str] = {}
    for name, value in parts:
        if name in ("person_image", "garment_images"):
            if not isinstance(value, bytes):
                raise InvalidRequest(f"{name} takes a file.", param=name)
            if not value:  # a file input left empty
                continue
            if len(value) > max_image_bytes:
                raise PayloadTooLarge(
                    f"{name} is larger than {max_image_bytes} bytes.",
                    type="image_too_large",
                    param=name,
                )
            target = person if name == "person_image" else garments
            target.append(ImageSource(param=f"{name}[{len(target)}]", data=value))
        elif isinstance(value, bytes):
            raise InvalidRequest(f"Field {echo(name)!r} does not take a file.", param=name)
        else:
            fields.setdefault(name, value.strip())
    if not person and fields.get("person_sample"):
        person.append(_sample(fields["person_sample"], "person"))
    if not garments and fields.get("garment_sample"):
        garments.append(_sample(fields["garment_sample"], "garment"))
    if len(person) != 1:
        raise InvalidRequest("Choose one person photo: a sample or an upload.", param="person")
    if not garments:
        raise InvalidRequest("Choose a garment photo: a sample or an upload.", param="garment")
    category = fields.get("category") or "auto"
    if category not in CATEGORIES:
        raise InvalidRequest(f"Unknown category {echo(category)!r}.", param="category")
    return TryOnRequest(
        person=person[0],
        garments=tuple(garments),
        model=fields.get("model") or "auto",
        category=category,
        mode="async",
        options=_options(fields.get("options", "")),
    )


def _options(text: str) -> dict[str, Any]:
    """The ``options`` field's JSON object, read by the API's multipart rules ("": none)."""
    return form_options({"options": text}).options if text else {}


def _sample(name: str, role: str) -> ImageSource:
    found = sample(name, role)
    if found is None:
        raise InvalidRequest(f"There is no {role} sample {echo(name)!r}.", param=f"{role}_sample")
    return ImageSource(param=f"{role}_sample", data=found[1])


ROUTES = [playground, sample_image, submit, job]
