"""A prediction FASHN accepted is followed again from its recorded id, never submitted twice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tryon_core.plugin import TaskFailed
from tryon_core.testing import Fault

Fashn = Any  # the `fashn` fixture of conftest.py


async def test_an_attempt_cut_off_after_the_run_resumes_from_the_recorded_id(
    fashn: Fashn, tryon: Any
) -> None:
    fashn.state.inject(Fault(kind="slow_task", seconds=30))  # still running when the "crash" hits
    first = asyncio.create_task(fashn.attempt(tryon(n=2)))
    await asyncio.sleep(0.3)
    assert fashn.recorded and not first.done()
    first.cancel()  # the process dies while polling
    with pytest.raises(asyncio.CancelledError):
        await first
    (prediction,) = fashn.recorded
    fashn.state.tasks[prediction].ready_at = 0  # FASHN finishes it meanwhile

    images = await fashn.attempt(tryon(n=2), task_id=prediction)
    assert len(images) == 2
    assert len(fashn.calls("POST", "/v1/run")) == 1  # nothing submitted again
    assert fashn.recorded == [prediction]  # and nothing recorded again
    polls = fashn.calls("GET", "/v1/status/")
    assert {r.path for r in polls} == {f"/v1/status/{prediction}"}


async def test_resuming_a_finished_prediction_reads_its_result_at_once(
    fashn: Fashn, tryon: Any
) -> None:
    await fashn.attempt(tryon())
    (prediction,) = fashn.recorded
    before = len(fashn.state.requests)
    images = await fashn.attempt(tryon(), task_id=prediction)
    assert len(images) == 1
    assert [r.path for r in fashn.state.requests[before:]] == [f"/v1/status/{prediction}"]


async def test_a_prediction_fashn_no_longer_tracks_fails_without_resubmitting(
    fashn: Fashn, tryon: Any
) -> None:
    with pytest.raises(TaskFailed) as caught:
        await fashn.attempt(tryon(), task_id="0000-gone-u1")
    assert caught.value.provider_code == "NotFound"
    assert fashn.calls("POST", "/v1/run") == []
