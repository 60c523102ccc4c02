"""Replicate's predictions API, as the official ``replicate`` client speaks it.

    POST {base}/v1/predictions                          {"version": ID, "input": {...}}
    POST {base}/v1/models/{owner}/{name}/predictions     {"input": {...}}   (latest version)
    POST {base}/v1/deployments/{owner}/{name}/predictions {"input": {...}}
         [Prefer: wait=N]  -> 201 prediction
    GET  {base}/v1/predictions/{id}                      -> 200 prediction
    POST {base}/v1/predictions/{id}/cancel               -> 200 prediction

Every call carries ``Authorization: Bearer <api_token>``. A prediction is
``{"id", "status", "output", "error", "logs", "urls", ...}`` with ``status`` one of
``starting``, ``processing``, ``succeeded``, ``failed``, ``canceled`` (and ``aborted``).
With ``Prefer: wait=N`` Replicate holds the create call until the model is done or N seconds
have passed: done, the answer carries the output (files as data URLs) with status
``processing`` or ``succeeded``; not done, status ``starting``, and the prediction is polled.
Status calls go to ``base_url`` (never to the ``urls`` an answer names), so the token is sent
nowhere else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from tryon_core.plugin import BadResponse, poll
from tryon_replicate.config import HostedModel, ReplicateConfig
from tryon_replicate.errors import Stage, answer
from tryon_replicate.models import Role

__all__ = ["TERMINAL", "Prediction", "Predictions", "finished"]

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
RUNNING = frozenset({"starting", "processing"})
_MAX_POLL_INTERVAL = 5.0


class Prediction(msgspec.Struct):
    id: str
    status: str
    output: Any = None
    error: Any = None
    logs: str | None = None


def finished(prediction: Prediction, *, waited: bool) -> bool:
    """Whether the prediction has its final output: a terminal status, or (after ``Prefer:
    wait``) ``processing`` with its output, which Replicate's sync mode answers when the model
    finished within the wait (the official client reads it the same way)."""
    if prediction.status in TERMINAL:
        return True
    return waited and prediction.status == "processing" and bool(prediction.output)


class Predictions:
    """One model's conversation with Replicate's predictions API, for one attempt."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        config: ReplicateConfig,
        *,
        slug: str,
        roles: Mapping[str, Role],
    ) -> None:
        self.http = http
        self.slug = slug
        self.roles = roles
        self.base = (config.base_url or "").rstrip("/")
        self.wait = config.wait
        self.interval = config.poll_interval
        self.headers = {"Authorization": f"Bearer {config.api_token}"}

    async def create(self, hosted: HostedModel, model_input: dict[str, Any]) -> Prediction:
        """Start a prediction of the entry's model, version or deployment."""
        body: dict[str, Any] = {"input": model_input}
        if hosted.deployment is not None:
            path = f"/v1/deployments/{hosted.deployment}/predictions"
        elif hosted.version is not None:
            path, body["version"] = "/v1/predictions", hosted.version
        else:
            path = f"/v1/models/{hosted.model}/predictions"
        headers = dict(self.headers)
        if self.wait:
            headers["Prefer"] = f"wait={self.wait}"
        response = await self.http.post(
            self.base + path,
            content=msgspec.json.encode(body),
            headers={**headers, "Content-Type": "application/json"},
        )
        return self._prediction(response, "create")

    async def get(self, prediction_id: str) -> Prediction:
        response = await self.http.get(self._url(prediction_id), headers=self.headers)
        return self._prediction(response, "get")

    async def cancel(self, prediction_id: str) -> Prediction:
        response = await self.http.post(f"{self._url(prediction_id)}/cancel", headers=self.headers)
        return self._prediction(response, "cancel")

    async def wait_for(
        self, prediction_id: str, report: Callable[[str], Awaitable[None]]
    ) -> Prediction:
        """Poll until the prediction ends; ``report`` hears each status."""

        async def check() -> Prediction | None:
            prediction = await self.get(prediction_id)
            await report(prediction.status)
            return prediction if prediction.status in TERMINAL else None

        ceiling = max(self.interval, _MAX_POLL_INTERVAL)
        return await poll(check, interval=self.interval, max_interval=ceiling)

    def _url(self, prediction_id: str) -> str:
        return f"{self.base}/v1/predictions/{quote(prediction_id, safe='')}"

    def _prediction(self, response: httpx.Response, stage: Stage) -> Prediction:
        body = answer(response, self.slug, stage=stage, roles=self.roles)
        try:
            prediction = msgspec.convert(body, Prediction)
        except msgspec.ValidationError:
            raise BadResponse(
                f"{self.slug}: Replicate's prediction has an unexpected shape."
            ) from None
        if not prediction.id:
            raise BadResponse(f"{self.slug}: Replicate answered a prediction without an id.")
        if prediction.status not in TERMINAL | RUNNING:
            raise BadResponse(
                f"{self.slug}: Replicate reported an unknown prediction status.",
                provider_code=prediction.status[:64],
            )
        return prediction
