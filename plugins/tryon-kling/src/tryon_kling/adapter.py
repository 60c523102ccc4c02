"""The adapter: one Kolors virtual try-on task per request.

    POST {base_url}/v1/images/kolors-virtual-try-on
         {"model_name", "human_image", "cloth_image",          (bare base64, JPEG or PNG)
          "external_task_id"}                                   (the core's attempt key)
         -> {"code": 0, "data": {"task_id", "task_status": "submitted", ...}}
    GET  {base_url}/v1/images/kolors-virtual-try-on/{task_id}
         -> data.task_status "submitted" | "processing" | "succeed" | "failed"
         -> data.task_result.images[] {"index", "url"} on "succeed"

Every call carries ``Authorization: Bearer <JWT>`` (:mod:`tryon_kling.auth`). The task id is
recorded before the first status query, and an attempt resumed with ``context.task_id`` only
polls. Each task is named with the core's attempt key (``external_task_id``, unique per
account); an attempt run again after a crash that left no task id (``context.resumed``) first
asks Kling for the task of that name (the query path takes an ``external_task_id`` too), and
submits only if Kling has none. The result URLs are downloaded at once through
``context.fetch``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tryon_core.plugin import (
    BadResponse,
    InputRejected,
    NoImage,
    OutputImage,
    ProviderContext,
    ProviderError,
    ProviderRequest,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
    json_body,
    poll,
)
from tryon_kling.auth import TokenCache
from tryon_kling.errors import code_of, error_for, redact, task_failure
from tryon_kling.images import encode, stack_pair
from tryon_kling.models import DEFAULT_BASE_URL, KOLORS_V1_5, UPSTREAM_NAMES, KlingConfig

__all__ = ["PATH", "KlingAdapter"]

PATH = "/v1/images/kolors-virtual-try-on"
MAX_POLL_INTERVAL = 5.0
QUERY_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
"""A status query is small: one that hangs is abandoned and retried (below)."""
POLL_RETRIES = 3
"""Consecutive transient failures of status queries tolerated while a task runs (429/1302,
5000/5001, connection errors, a query timeout): the task is already paid for, so a brief
hiccup is waited out rather than abandoned."""

_RUNNING = ("submitted", "processing")
_UNKNOWN_TASK = ("1203", "404")
"""Kling's answer to a query for a task it does not know (business code, or a bare 404)."""


class KlingAdapter:
    """Serves both Kolors models; one instance serves every request concurrently."""

    def __init__(self, config: KlingConfig) -> None:
        del config  # every attempt reads context.config
        self._tokens = TokenCache()

    async def run(self, request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        call = _Calls(self._tokens, context, request.model)
        task_id = context.task_id
        if task_id is None and context.resumed and context.attempt_key:
            task_id = await call.find(context.attempt_key)
            if task_id is not None:
                await context.record_task(task_id)
        if task_id is None:
            body = await asyncio.to_thread(_task_body, request)
            if context.attempt_key:
                body["external_task_id"] = context.attempt_key
            created = await call.send("POST", PATH, json=body)
            del body  # megabytes of base64, not to be held while the task runs
            task_id = created.get("task_id")
            if not isinstance(task_id, str) or not task_id:
                raise BadResponse(f"{request.model}: Kling accepted the task without a task_id.")
            await context.record_task(task_id)
        urls = await call.wait(task_id)
        return [OutputImage(data=await context.fetch(url)) for url in urls[: request.n]]


def _task_body(request: ProviderRequest) -> dict[str, str]:
    """The create-task JSON. Two garments (v1-5) go as one picture, the top above the bottom:
    ``bottoms`` names the first garment's role, otherwise the first is the top."""
    garments = request.garments
    if len(garments) == 2 and request.model == KOLORS_V1_5.slug:
        if request.category == "one-pieces":
            raise InputRejected(
                f"{request.model} takes two garments only as a top and a bottom, "
                "not with category 'one-pieces'.",
                param="category",
            )
        top, bottom = garments if request.category != "bottoms" else garments[::-1]
        cloth = encode(stack_pair(top, bottom))
    elif len(garments) == 1:
        cloth = encode(garments[0])
    else:
        pair = " or a top and a bottom" if request.model == KOLORS_V1_5.slug else ""
        raise InputRejected(f"{request.model} takes one garment image{pair}.", param="garments")
    return {
        "model_name": UPSTREAM_NAMES[request.model],
        "human_image": encode(request.person),
        "cloth_image": cloth,
    }


class _Calls:
    """Authorised calls for one attempt, answers checked and mapped to the core's errors."""

    def __init__(self, tokens: TokenCache, context: ProviderContext, slug: str) -> None:
        config: KlingConfig = context.config
        self._tokens = tokens
        self._http = context.http
        self._config = config
        self._base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._slug = slug
        self._report = context.report_state
        self._used: set[str] = set()

    @property
    def _secrets(self) -> tuple[str, ...]:
        """What no message may contain: both keys and every token this attempt sent."""
        return (self._config.access_key or "", self._config.secret_key or "", *self._used)

    async def send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The ``data`` of a successful answer, or the mapped error."""
        token = self._tokens.token(self._config.access_key or "", self._config.secret_key or "")
        self._used.add(token)
        headers = {"Authorization": f"Bearer {token}"}
        response = await self._http.request(
            method, f"{self._base}{path}", headers=headers, **kwargs
        )
        if not response.is_success:
            raise error_for(response, self._slug, _json_or_none(response), self._secrets)
        body = json_body(response, self._slug)
        if not isinstance(body, dict) or code_of(body) is None:
            raise BadResponse(f"{self._slug}: Kling answered without its envelope.")
        if code_of(body) != 0:
            raise error_for(response, self._slug, body, self._secrets)
        data = body.get("data")
        if not isinstance(data, dict):
            raise BadResponse(f"{self._slug}: Kling answered without task data.")
        return data

    async def find(self, external_task_id: str) -> str | None:
        """The id of the task submitted under ``external_task_id``, or None if there is none."""
        try:
            task = await self.send("GET", f"{PATH}/{external_task_id}", timeout=QUERY_TIMEOUT)
        except ProviderError as error:
            if error.provider_code in _UNKNOWN_TASK:
                return None
            raise
        task_id = task.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise BadResponse(f"{self._slug}: Kling answered a task query without a task_id.")
        return task_id

    async def wait(self, task_id: str) -> list[str]:
        """Poll the task until it ends; its result URLs, in ``index`` order."""
        failures = 0

        async def check() -> list[str] | None:
            nonlocal failures
            try:
                task = await self.send("GET", f"{PATH}/{task_id}", timeout=QUERY_TIMEOUT)
            except (RateLimited, ProviderUnavailable, httpx.TransportError):
                failures += 1
                if failures > POLL_RETRIES:
                    raise
                return None
            except ProviderError as error:
                if error.provider_code in _UNKNOWN_TASK:
                    raise TaskFailed(
                        f"{self._slug}: Kling no longer knows task {task_id}.",
                        provider_code=error.provider_code,
                        upstream_message=error.upstream_message,
                    ) from None
                raise
            failures = 0
            await self._report(str(task.get("task_status")))
            return self._outcome(task_id, task)

        interval = self._config.poll_interval
        return await poll(check, interval=interval, max_interval=max(interval, MAX_POLL_INTERVAL))

    def _outcome(self, task_id: str, task: dict[str, Any]) -> list[str] | None:
        status = task.get("task_status")
        if status in _RUNNING:
            return None
        if status == "failed":
            said = redact(task.get("task_status_msg"), self._secrets)
            raise task_failure(self._slug, task_id, said)
        if status != "succeed":
            raise BadResponse(f"{self._slug}: Kling reported the unknown task status {status!r}.")
        result = task.get("task_result")
        images = result.get("images") if isinstance(result, dict) else None
        if not images:
            raise NoImage(f"{self._slug}: Kling task {task_id} succeeded without an image.")
        if not isinstance(images, list):
            raise BadResponse(f"{self._slug}: Kling's task_result.images is not a list.")
        return result_urls(images, self._slug)


def result_urls(images: list[Any], slug: str) -> list[str]:
    """The ``url`` of every image, ordered by ``index`` (an int or a numeric string)."""
    found: list[tuple[int, int, str]] = []
    for position, image in enumerate(images):
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadResponse(f"{slug}: Kling listed a result image without a URL.")
        index = image.get("index", position)
        try:
            order = int(index)
        except (TypeError, ValueError):
            raise BadResponse(f"{slug}: Kling gave a result image the index {index!r}.") from None
        found.append((order, position, url))
    return [url for _, _, url in sorted(found)]


def _json_or_none(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None
