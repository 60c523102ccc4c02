"""The adapter: one request as one prediction of the configured model.

Create the prediction (unless the core resumes one Replicate already accepted), record its id,
poll it until it ends (unless sync mode already brought the output), then download its files.
"""

from __future__ import annotations

import asyncio

import msgspec

from tryon_core.plugin import (
    OutputImage,
    ProviderContext,
    ProviderMisconfigured,
    ProviderRequest,
    TaskFailed,
)
from tryon_replicate.config import HostedModel, ReplicateConfig
from tryon_replicate.errors import failed_prediction
from tryon_replicate.inputs import prediction_input
from tryon_replicate.models import input_roles, request_roles
from tryon_replicate.output import download, file_links
from tryon_replicate.predictions import Prediction, Predictions, finished

__all__ = ["ReplicateAdapter"]


class ReplicateAdapter:
    """Serves every model of ``[providers.replicate.models]``; each attempt reads its entry
    from ``context.config``."""

    def __init__(self, config: ReplicateConfig) -> None:
        del config  # each attempt reads context.config

    async def run(self, request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        config: ReplicateConfig = context.config
        hosted = _entry(config, request.model)
        sent = msgspec.to_builtins(request.options) if request.options is not None else {}
        roles = request_roles(hosted, sent)
        api = Predictions(context.http, config, slug=request.model, roles=roles)
        if context.task_id:
            prediction = await api.wait_for(context.task_id, context.report_state)
        else:
            body = await prediction_input(hosted, request, max_image_bytes=config.max_image_bytes)
            prediction = await api.create(hosted, body)
            del body  # megabytes of data URLs, not to be held while the prediction runs
            await context.record_task(prediction.id)
            await context.report_state(prediction.status)
            if not finished(prediction, waited=bool(config.wait)):
                prediction = await api.wait_for(prediction.id, context.report_state)
        return await _images(prediction, request, context)

    async def cancel(self, model: str, task_id: str, context: ProviderContext) -> bool:
        """Ask Replicate to stop the prediction: True when it ends canceled (nor billed further),
        False when it had already ended, or Replicate does not know it."""
        config: ReplicateConfig = context.config
        hosted = _entry(config, model)
        api = Predictions(context.http, config, slug=model, roles=input_roles(hosted))
        try:
            prediction = await api.cancel(task_id)
        except TaskFailed:  # 404: Replicate does not know the prediction
            return False
        return prediction.status in ("canceled", "aborted")


def _entry(config: ReplicateConfig, slug: str) -> HostedModel:
    hosted = config.models.get(slug)
    if hosted is None:
        raise ProviderMisconfigured(f"{slug} is not a model of [providers.replicate.models].")
    return hosted


async def _images(
    prediction: Prediction, request: ProviderRequest, context: ProviderContext
) -> list[OutputImage]:
    if prediction.status not in ("succeeded", "processing"):
        raise failed_prediction(request.model, prediction.status, prediction.error, prediction.logs)
    links = file_links(prediction.output, request.model)[: request.n]
    images = await asyncio.gather(*(download(link, context, request.model) for link in links))
    return [OutputImage(data=data) for data in images]
