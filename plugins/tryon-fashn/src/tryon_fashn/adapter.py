"""The adapter: one FASHN prediction per request (WIRE.md section 5).

    POST {base_url}/v1/run          {"model_name", "inputs"}  (body: tryon_fashn.body)
                                    -> {"id": ID, "error": null}
    GET  {base_url}/v1/status/{id}  -> {"id", "status", "output", "error"}
         status: starting | in_queue | processing  (running)
                 completed (output: data URIs or links) | failed (error: {name, message})
                 | canceled | time_out

Every call carries ``Authorization: Bearer <api_key>``. The prediction id is recorded before
the first status query; an attempt resumed with ``context.task_id`` only polls it. FASHN
cannot find a prediction by a name of ours, so a crash between its answer to ``/v1/run`` and
``record_task`` leaves a prediction the gateway never sees (``keyed_tasks`` is false). A few
transient failures of status queries (429, 5xx, connection errors) are waited out: the
prediction is already paid for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tryon_core.plugin import (
    BadResponse,
    OutputImage,
    ProviderContext,
    ProviderRequest,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
    build_for_upstream,
    image_fits,
    json_body,
    poll,
)
from tryon_fashn.body import FORMATS, MAX_SIDE, run_body
from tryon_fashn.errors import api_error, prediction_failure
from tryon_fashn.models import DEFAULT_BASE_URL, FashnConfig
from tryon_fashn.outputs import collect

__all__ = ["RUNNING", "FashnAdapter"]

RUNNING = ("starting", "in_queue", "processing")
ENDED = ("completed", "failed", "canceled", "time_out")
MAX_POLL_INTERVAL = 5.0
POLL_RETRIES = 3
"""Consecutive transient failures of status queries tolerated while a prediction runs."""


class FashnAdapter:
    """Serves both FASHN models; one instance serves every request concurrently."""

    def __init__(self, config: FashnConfig) -> None:
        del config  # every attempt reads context.config

    async def run(self, request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        api = _Api(context.http, context.config, request.model)
        prediction = context.task_id
        if prediction is None:
            prediction = await api.submit(await _body(request, context.config))
            await context.record_task(prediction)
        output = await api.wait(prediction, context.report_state)
        return await collect(output, request.n, context, request.model)


async def _body(request: ProviderRequest, config: FashnConfig) -> dict[str, Any]:
    """The run body, built on the event loop only when no image needs re-encoding."""
    images = (request.person, *request.garments)
    if all(image_fits(i, formats=FORMATS, max_side=MAX_SIDE) for i in images):
        return await build_for_upstream(lambda: run_body(request, config), images, formats=FORMATS)
    return await asyncio.to_thread(run_body, request, config)


class _Api:
    """Authorised calls to FASHN for one attempt, answers checked and mapped to errors."""

    def __init__(self, http: httpx.AsyncClient, config: FashnConfig, slug: str) -> None:
        self._http = http
        self._base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._headers = {"Authorization": f"Bearer {config.api_key}"}
        self._interval = config.poll_interval
        self._slug = slug

    async def submit(self, body: dict[str, Any]) -> str:
        """The prediction id FASHN gives the run."""
        response = await self._http.post(f"{self._base}/v1/run", json=body, headers=self._headers)
        answer = self._answer(response, "run")
        if answer.get("error") is not None:  # the SDK's "failed to start"
            raise TaskFailed(
                f"{self._slug}: FASHN could not start the prediction.",
                provider_code="run",
                upstream_message=str(answer["error"])[:500],
            )
        prediction = answer.get("id")
        if not isinstance(prediction, str) or not prediction:
            raise BadResponse(f"{self._slug}: FASHN accepted the run without a prediction id.")
        return prediction

    async def wait(self, prediction: str, report: Callable[[str], Awaitable[None]]) -> Any:
        """Poll until the prediction ends; its ``output`` when it completed."""
        failures = 0

        async def check() -> dict[str, Any] | None:
            nonlocal failures
            try:
                response = await self._http.get(
                    f"{self._base}/v1/status/{prediction}", headers=self._headers
                )
                status = self._answer(response, "status")
            except (RateLimited, ProviderUnavailable, httpx.TransportError):
                failures += 1
                if failures > POLL_RETRIES:
                    raise
                return None
            failures = 0
            state = status.get("status")
            if not isinstance(state, str) or state not in RUNNING + ENDED:
                raise BadResponse(f"{self._slug}: FASHN reported the unknown status {state!r}.")
            await report(state)
            return None if state in RUNNING else status

        interval = self._interval
        ended = await poll(check, interval=interval, max_interval=max(interval, MAX_POLL_INTERVAL))
        if ended["status"] != "completed":
            raise prediction_failure(self._slug, prediction, ended["status"], ended.get("error"))
        return ended.get("output")

    def _answer(self, response: httpx.Response, stage: str) -> dict[str, Any]:
        if not response.is_success:
            raise api_error(response, self._slug, stage=stage)
        body = json_body(response, self._slug)
        if not isinstance(body, dict):
            raise BadResponse(f"{self._slug}: FASHN answered the {stage} call without an object.")
        return body
