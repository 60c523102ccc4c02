"""tryon-acme: a provider plugin for an HTTP try-on service (Acme Try-On, a made-up API).

Acme's protocol is submit-then-poll; every request carries ``Authorization: Bearer API_KEY``:

    POST {base_url}/v1/tasks       {"person": B64, "garment": B64, "category": C, "seed": S}
                                   -> 201 {"id": "task_…", "status": "queued"}
    GET  {base_url}/v1/tasks/{id}  -> 200 {"status": "queued" | "running"}
                                   -> 200 {"status": "succeeded", "image_url": URL}
                                   -> 200 {"status": "failed", "error": {"code": C, "message": M}}

Errors: 401/403 (bad key, no quota), 429 with Retry-After, 400/422 {"error": {"code", "message"}}
(``code`` is "content_policy" when Acme refuses the content), 5xx.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx

from tryon_core import (
    Capabilities,
    ModelSpec,
    OutputImage,
    ProviderConfig,
    ProviderContext,
    ProviderRequest,
    ProviderSpec,
    hookimpl,
)
from tryon_core.errors import (
    BadResponse,
    ContentRefused,
    InputRejected,
    ProviderMisconfigured,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
)
from tryon_core.registry import Registrar

MODEL = ModelSpec(
    slug="acme/tryon-v1",
    name="Acme Try-On v1",
    description="Acme's hosted try-on model: one garment, one image per request.",
    credits=4,
    owned_by="acme",
    capabilities=Capabilities(
        execution="submit-poll",
        max_garments=1,
        max_outputs=1,
        input_formats=("image/jpeg", "image/png"),
        max_input_side=4096,
        supports_seed=True,
    ),
)


class AcmeConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    """``[providers.acme]``: ``api_key`` must be set when ``enabled = true``."""

    secrets = ("api_key",)

    api_key: str | None = None
    base_url: str | None = "https://api.acme.example"
    poll_interval: float = 2.0


class AcmeAdapter:
    def __init__(self, config: AcmeConfig) -> None:
        self.config = config
        self.base = (config.base_url or "").rstrip("/")
        self.headers = {"Authorization": f"Bearer {config.api_key}"}

    async def run(self, request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        # Connection errors and timeouts are left to escape: the core maps them to
        # ProviderUnavailable and ProviderTimeout. The whole run, polling included, is bounded
        # by [providers.acme] timeout.
        submitted = await context.http.post(
            f"{self.base}/v1/tasks",
            headers=self.headers,
            json={
                "person": _b64(request.person.data),
                "garment": _b64(request.garments[0].data),
                "category": request.category,
                "seed": request.seed,
            },
        )
        task_id = str(_answer(submitted).get("id") or "")
        if not task_id:
            raise BadResponse("Acme accepted the task but sent no task id.")
        await context.record_task(task_id)  # kept with the attempt, shown in "attempts"
        while True:
            polled = _answer(
                await context.http.get(f"{self.base}/v1/tasks/{task_id}", headers=self.headers)
            )
            status = polled.get("status")
            if status == "succeeded":
                url = polled.get("image_url")
                if not isinstance(url, str) or not url:
                    raise BadResponse("Acme reported success without an image URL.")
                # context.fetch, not context.http: the URL comes from the upstream, so it is
                # downloaded behind the egress guard and the byte limit. A failure raises
                # BadResponse. The core then checks that the bytes are an image.
                return [OutputImage(data=await context.fetch(url))]
            if status == "failed":
                raise _task_error(polled.get("error"))
            if status not in ("queued", "running"):
                raise BadResponse(f"Acme reported an unknown task status {status!r}.")
            await asyncio.sleep(self.config.poll_interval)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _answer(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a 2xx answer, or the typed error its status means."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            body = response.json()
        except ValueError:
            raise BadResponse("Acme answered with something that is not JSON.") from None
        if not isinstance(body, dict):
            raise BadResponse("Acme answered with an unexpected JSON value.")
        return body
    if status in (401, 403):
        # The gateway's own key or quota: the caller is not at fault, another model may serve.
        raise ProviderMisconfigured("Acme refused the gateway's credentials.", provider_code=status)
    if status == 429:
        raise RateLimited(
            "Acme is rate limiting this gateway.",
            provider_code=status,
            retry_after=_seconds(response.headers.get("retry-after")),
        )
    if status in (400, 422):
        raise _task_error(_error_of(response), provider_code=status)
    raise ProviderUnavailable(f"Acme answered HTTP {status}.", provider_code=status)


def _error_of(response: httpx.Response) -> Any:
    try:
        return response.json().get("error")
    except (ValueError, AttributeError):
        return None


def _task_error(error: Any, *, provider_code: int | None = None) -> Exception:
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or provider_code or "")
    upstream = str(error.get("message") or "")[:500]
    if code == "content_policy":
        return ContentRefused(
            "Acme refused this content.", provider_code=code, upstream_message=upstream
        )
    if provider_code is not None:  # a 400/422 on submit: Acme does not accept this input
        return InputRejected(
            "Acme cannot use these images.", provider_code=code, upstream_message=upstream
        )
    return TaskFailed(
        "Acme could not finish the task.", provider_code=code, upstream_message=upstream
    )


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


@hookimpl
def tryon_register_providers(registrar: Registrar) -> None:
    registrar.add_provider(
        ProviderSpec(
            name="acme", config_type=AcmeConfig, models=(MODEL,), adapter_factory=AcmeAdapter
        )
    )
