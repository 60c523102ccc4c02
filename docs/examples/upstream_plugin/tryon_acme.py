"""tryon-acme: a provider plugin for an HTTP try-on service (Acme Try-On, a made-up API).

Acme's protocol is submit-then-poll; every request carries ``Authorization: Bearer API_KEY``:

    POST {base_url}/v1/tasks       {"person": B64, "garment": B64, "category": C, "seed": S}
                                   -> 201 {"id": ID, "status": "queued"}
    GET  {base_url}/v1/tasks/{id}  -> 200 {"id": ID, "status": "queued" | "running"}
                                   -> 200 {"id": ID, "status": "succeeded", "image_url": URL}
                                   -> 200 {"id": ID, "status": "failed", "error": ERROR}

Images are standard base64 of a JPEG or PNG of at most 5 MB. Errors, and ERROR above, are
``{"error": {"code": C, "message": M}}``: 401 (bad key), 403 (quota used up), 429 with
``Retry-After``, 400/422 (unusable input; ``code`` is "content_policy" when Acme refuses the
content), 5xx. A fake of the API for tests and ``tryon fakes serve`` is in ``tryon_acme_fake``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tryon_core.plugin import (
    BadResponse,
    Capabilities,
    ContentRefused,
    InputImage,
    ModelSpec,
    NoImage,
    OutputImage,
    ProviderConfig,
    ProviderContext,
    ProviderRequest,
    ProviderSpec,
    Registrar,
    TaskFailed,
    classify_status,
    error_object,
    fit_image_base64,
    hookimpl,
    json_body,
    poll,
)

SLUG = "acme/tryon-v1"
ACCEPTED = ("image/jpeg", "image/png")  # what Acme reads; WebP inputs are re-encoded
MAX_BYTES = 5 * 1024 * 1024  # Acme's limit per image; larger inputs are shrunk to fit

MODEL = ModelSpec(
    slug=SLUG,
    name="Acme Try-On v1",
    description="Acme's hosted try-on model: one garment, one image per request.",
    credits=4,
    owned_by="acme",
    capabilities=Capabilities(
        execution="submit-poll",
        max_garments=1,
        max_outputs=1,
        supports_seed=True,
    ),
)


class AcmeConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    """``[providers.acme]``: ``api_key`` must be set when ``enabled = true``."""

    secrets = ("api_key",)  # a ClassVar: these must be set when enabled

    api_key: str | None = None
    base_url: str | None = "https://api.acme.example"  # your default for the common key
    poll_interval: float = 1.0


class AcmeAdapter:
    def __init__(self, config: AcmeConfig) -> None:
        self.config = config
        self.base = (config.base_url or "").rstrip("/")
        self.headers = {"Authorization": f"Bearer {config.api_key}"}

    async def run(self, request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        # Connection errors and timeouts are left to escape: the core maps them to
        # ProviderUnavailable and ProviderTimeout. The whole run, polling included, is bounded
        # by [providers.acme] timeout.
        task_id = context.task_id  # set only when resuming a task Acme already accepted
        if task_id is None:
            task_id = await self._submit(request, context)
            await context.record_task(task_id)  # kept with the attempt, shown in "attempts"

        async def check() -> dict[str, Any] | None:
            url = f"{self.base}/v1/tasks/{task_id}"
            task = _answer(await context.http.get(url, headers=self.headers), request.model)
            status = task.get("status")
            await context.report_state(str(status))  # shown as an async job's progress
            if status in ("queued", "running"):
                return None  # poll() waits and asks again
            if status in ("succeeded", "failed"):
                return task
            raise BadResponse(f"Acme reported an unknown task status {status!r}.")

        task = await poll(check, interval=self.config.poll_interval, max_interval=5.0)
        if task["status"] == "failed":
            raise _task_error(task.get("error"))
        url = task.get("image_url")
        if url is None:
            raise NoImage("Acme finished the task without an image.")
        if not isinstance(url, str):
            raise BadResponse("Acme sent an image URL that is not a string.")
        # context.fetch, not context.http: the URL comes from the upstream, so it is downloaded
        # behind the egress guard and the byte limit. A failure raises BadResponse. The core
        # then checks that the bytes are an image and converts them to the requested format.
        return [OutputImage(data=await context.fetch(url))]

    async def _submit(self, request: ProviderRequest, context: ProviderContext) -> str:
        # Re-encoding is CPU-bound: keep it off the event loop.
        person, garment = await asyncio.to_thread(_encode_images, request)
        response = await context.http.post(
            f"{self.base}/v1/tasks",
            headers=self.headers,
            json={
                "person": person,
                "garment": garment,
                "category": request.category,
                "seed": request.seed,
            },
        )
        task_id = _answer(response, request.model).get("id")
        if not isinstance(task_id, str) or not task_id:
            raise BadResponse("Acme accepted the task but sent no task id.")
        return task_id


def _encode_images(request: ProviderRequest) -> tuple[str, str]:
    """The person and garment as Acme takes them: JPEG or PNG of at most 5 MB, in base64."""
    return _b64(request.person), _b64(request.garments[0])


def _b64(image: InputImage) -> str:
    # the bytes as they are if they fit, else re-encoded to fit; in base64
    return fit_image_base64(image, formats=ACCEPTED, max_bytes=MAX_BYTES)[0]


def _answer(response: httpx.Response, slug: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer, or the typed error its status and code mean."""
    if response.is_success:
        body = json_body(response, slug)  # BadResponse when it is not JSON
        if not isinstance(body, dict):
            raise BadResponse("Acme answered with an unexpected JSON value.")
        return body
    error = error_object(response)
    code, message = error.get("code"), str(error.get("message") or "")[:500]
    if code == "content_policy":
        raise ContentRefused(
            "Acme refused this content.", provider_code=code, upstream_message=message
        )
    # 429 RateLimited with Retry-After, 401/403 ProviderMisconfigured, 400/422 InputRejected,
    # 5xx ProviderUnavailable... Acme's words go to upstream_message only: the error's message
    # is shown to the client.
    failure = classify_status(response, slug, code=code)
    failure.upstream_message = message or None
    raise failure


def _task_error(error: Any) -> Exception:
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or "failed")
    message = str(error.get("message") or "")[:500] or None
    if code == "content_policy":
        return ContentRefused(
            "Acme refused this content.", provider_code=code, upstream_message=message
        )
    return TaskFailed(
        "Acme could not finish the task.", provider_code=code, upstream_message=message
    )


@hookimpl
def tryon_register_providers(registrar: Registrar) -> None:
    registrar.add_provider(
        ProviderSpec(
            name="acme",
            config_type=AcmeConfig,
            models=(MODEL,),
            adapter_factory=AcmeAdapter,
            fake="tryon_acme_fake:create_app",  # imported only by `tryon fakes serve` and tests
        )
    )
