"""A prediction Replicate accepted is followed by its id: recorded before any poll, resumed
after a restart without a second create, and cancelled through ``CancellableAdapter``."""

from __future__ import annotations

import asyncio
from typing import Any

from tryon_replicate import ReplicateAdapter

from tryon_core.plugin import CancellableAdapter, InputImage, ProviderRequest, TaskFailed
from tryon_core.testing import Fault


def request(person: InputImage, garment: InputImage) -> ProviderRequest:
    return ProviderRequest(model="replicate/idm-vton", person=person, garments=(garment,))


async def test_a_recorded_prediction_is_resumed_without_creating_another(
    context: Any, fake: Any, person: InputImage, garment: InputImage
) -> None:
    first, recorder = context()
    await ReplicateAdapter(first.config).run(request(person, garment), first)
    [prediction_id] = recorder.tasks

    again, second = context(task_id=prediction_id)
    images = await ReplicateAdapter(again.config).run(request(person, garment), again)
    assert len(images) == 1
    assert len(fake.calls("create")) == 1  # the resumed attempt created nothing
    assert second.tasks == []  # nor recorded another id
    assert [c.summary["prediction_id"] for c in fake.calls("get")][-1] == prediction_id


async def test_a_resumed_prediction_that_failed_meanwhile_is_a_failed_task(
    context: Any, fake: Any, person: InputImage, garment: InputImage
) -> None:
    fake.state.inject(Fault(kind="slow_task", seconds=30))
    ctx, recorder = context()
    running = asyncio.create_task(ReplicateAdapter(ctx.config).run(request(person, garment), ctx))
    await recorder.recorded.wait()
    running.cancel()  # the gateway's process stops; the prediction runs on at Replicate

    fake.state.inject(Fault(kind="task_failed", code="Killed"))
    resumed, _ = context(task_id=recorder.tasks[0])
    try:
        await ReplicateAdapter(resumed.config).run(request(person, garment), resumed)
    except TaskFailed as failed:
        assert failed.upstream_message and "Killed" in failed.upstream_message
    else:
        raise AssertionError("a failed prediction was not reported")
    assert len(fake.calls("create")) == 1


async def test_cancel_stops_a_running_prediction_and_not_an_ended_one(
    context: Any, fake: Any, person: InputImage, garment: InputImage
) -> None:
    adapter: CancellableAdapter = ReplicateAdapter(context()[0].config)  # mypy checks the protocol
    fake.state.inject(Fault(kind="slow_task", seconds=30))
    ctx, recorder = context()
    running = asyncio.create_task(adapter.run(request(person, garment), ctx))
    await recorder.recorded.wait()
    prediction_id = recorder.tasks[0]

    assert await adapter.cancel("replicate/idm-vton", prediction_id, ctx) is True
    [cancel] = fake.calls("cancel")
    assert cancel.method == "POST" and cancel.path == f"/v1/predictions/{prediction_id}/cancel"
    assert cancel.headers["authorization"].startswith("Bearer ")
    try:
        await running
    except TaskFailed as failed:  # the attempt sees its prediction end canceled
        assert failed.provider_code == "canceled"
    else:
        raise AssertionError("a canceled prediction was taken for a result")

    # asked again, it is still canceled; a prediction that succeeded is too late to cancel,
    # and one Replicate does not know is not there to cancel
    assert await adapter.cancel("replicate/idm-vton", prediction_id, ctx) is True
    done, finished = context()
    await adapter.run(request(person, garment), done)
    assert await adapter.cancel("replicate/idm-vton", finished.tasks[0], ctx) is False
    assert await adapter.cancel("replicate/idm-vton", "nosuchprediction", ctx) is False
