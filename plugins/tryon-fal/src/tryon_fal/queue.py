"""fal's queue protocol, once, for every app (WIRE.md section 4.1).

    POST {base}/{endpoint_id}                   JSON input
         -> {request_id, status_url, response_url, cancel_url, status: "IN_QUEUE", …}
    GET  {status_url}?logs=0                    202 {status: IN_QUEUE, queue_position}
                                                202 {status: IN_PROGRESS, logs}
                                                200 {status: COMPLETED, logs, metrics[, error,
                                                     error_type]}
    GET  {response_url}                         the app's output JSON (or its error)

Every call carries ``Authorization: Key <api_key>``. The status and result URLs use only the
endpoint's ``owner/app``, not its sub-path: ``fal-ai/flux-pro/kontext/max/multi`` is polled at
``{base}/fal-ai/flux-pro/requests/{id}/status``. The URLs fal returns are used as they are;
they are rebuilt from ``base_url`` when resuming from a request id alone, and when fal names
another origin than ``base_url`` (the key is never sent anywhere else).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from tryon_core.plugin import BadResponse, ProviderMisconfigured, poll
from tryon_fal.config import FalConfig
from tryon_fal.errors import answer, failed_request

__all__ = ["Handle", "Queue"]

_MAX_POLL_INTERVAL = 5.0


class Handle(msgspec.Struct, frozen=True, kw_only=True):
    """Where one queued request is followed."""

    request_id: str
    status_url: str
    response_url: str

    @property
    def cancel_url(self) -> str:
        return f"{self.response_url}/cancel"


class _Submitted(msgspec.Struct):
    request_id: str
    status_url: str | None = None
    response_url: str | None = None


class _Status(msgspec.Struct):
    status: str
    error: Any = None
    error_type: Any = None


class Queue:
    """One conversation with fal's queue about one endpoint, for one attempt."""

    def __init__(
        self, http: httpx.AsyncClient, config: FalConfig, *, endpoint_id: str, slug: str
    ) -> None:
        if not config.api_key:
            raise ProviderMisconfigured(f"{slug}: [providers.fal] api_key is not set.")
        self.http = http
        self.slug = slug
        self.secret = config.api_key
        self.endpoint_id = endpoint_id
        self.base = (config.base_url or "").rstrip("/")
        self.app = "/".join(endpoint_id.split("/")[:2])
        self.interval = config.poll_interval
        self.headers = {"Authorization": f"Key {config.api_key}"}

    def handle(self, request_id: str) -> Handle:
        """The URLs of a request known only by its id (resuming after a restart)."""
        root = f"{self.base}/{self.app}/requests/{quote(request_id, safe='')}"
        return Handle(request_id=request_id, status_url=f"{root}/status", response_url=root)

    async def submit(self, body: bytes) -> Handle:
        """Queue the JSON input; returns where to follow it."""
        response = await self.http.post(
            f"{self.base}/{self.endpoint_id}",
            content=body,
            headers={**self.headers, "Content-Type": "application/json"},
        )
        submitted = self._convert(
            answer(response, self.slug, secret=self.secret, stage="submit"), _Submitted, "submit"
        )
        if not submitted.request_id:
            raise BadResponse(f"{self.slug}: fal queued the request without a request id.")
        rebuilt = self.handle(submitted.request_id)
        return Handle(
            request_id=submitted.request_id,
            status_url=self._own(submitted.status_url, rebuilt.status_url),
            response_url=self._own(submitted.response_url, rebuilt.response_url),
        )

    async def wait(
        self, handle: Handle, report: Callable[[str], Awaitable[None]] | None = None
    ) -> None:
        """Poll the status until the request is ``COMPLETED``; raise if it failed there.

        ``report`` hears each status fal gives (``IN_QUEUE``, ``IN_PROGRESS``, ...)."""

        async def check() -> bool | None:
            response = await self.http.get(
                handle.status_url, params={"logs": "0"}, headers=self.headers
            )
            body = answer(response, self.slug, secret=self.secret, stage="status")
            status = self._convert(body, _Status, "status")
            if report is not None:
                await report(str(status.status))
            if status.status in ("IN_QUEUE", "IN_PROGRESS"):
                return None
            if status.status != "COMPLETED":
                raise BadResponse(
                    f"{self.slug}: fal reported an unknown request status.",
                    provider_code=str(status.status)[:64],
                )
            if status.error or status.error_type:
                raise failed_request(self.slug, status.error, status.error_type, secret=self.secret)
            return True

        ceiling = max(self.interval, _MAX_POLL_INTERVAL)
        await poll(check, interval=self.interval, max_interval=ceiling)

    async def cancel(self, handle: Handle) -> bool:
        """Ask fal to drop the request: True if it will not run (or finish), False if too late."""
        response = await self.http.put(handle.cancel_url, headers=self.headers)
        try:
            said = response.json().get("status")
        except (ValueError, AttributeError):
            said = None
        return response.status_code == 202 and said in ("CANCELLATION_REQUESTED", "OK")

    async def result(self, handle: Handle) -> dict[str, Any]:
        """The completed request's output JSON."""
        response = await self.http.get(handle.response_url, headers=self.headers)
        body: dict[str, Any] = answer(response, self.slug, secret=self.secret, stage="result")
        return body

    def _own(self, url: str | None, rebuilt: str) -> str:
        """fal's URL when it is on ``base_url``; otherwise the same path on ``base_url``."""
        return url if url and url.startswith(f"{self.base}/") else rebuilt

    def _convert(self, body: Any, kind: type[Any], stage: str) -> Any:
        try:
            return msgspec.convert(body, kind)
        except msgspec.ValidationError:
            raise BadResponse(
                f"{self.slug}: fal's answer to the {stage} call has an unexpected shape."
            ) from None
