"""FASHN's failures, API-level and runtime, as the core's error classes; which fall back."""

from __future__ import annotations

from typing import Any

import pytest
from tryon_fashn.fake import TEST_API_KEY

from tryon_core.plugin import (
    BadResponse,
    ContentRefused,
    InputRejected,
    NoImage,
    ProviderError,
    ProviderMisconfigured,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
)
from tryon_core.testing import Fault

Fashn = Any  # the `fashn` fixture of conftest.py


async def failure(fashn: Fashn, tryon: Any, *faults: Fault, **config: Any) -> ProviderError:
    fashn.state.inject(*faults)
    with pytest.raises(ProviderError) as caught:
        await fashn.attempt(tryon(), **config)
    return caught.value


NOOP = Fault(kind="slow_task", seconds=0)
"""Taken by the run call without changing anything: the next fault meets a status query."""


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        (Fault(kind="rate_limit"), RateLimited, "RateLimitExceeded"),
        (Fault(kind="rate_limit", code="ConcurrencyLimitExceeded"), RateLimited, None),
        (Fault(kind="quota"), ProviderMisconfigured, "OutOfCredits"),
        (Fault(kind="auth"), ProviderMisconfigured, "UnauthorizedAccess"),
        (Fault(kind="server_error"), ProviderUnavailable, "InternalServerError"),
        (Fault(kind="server_error", status=503), ProviderUnavailable, "InternalServerError"),
        (Fault(kind="invalid_input"), InputRejected, "BadRequest"),
    ],
)
async def test_api_level_errors_of_the_run_call(
    fashn: Fashn, tryon: Any, fault: Fault, error: type[ProviderError], code: str | None
) -> None:
    caught = await failure(fashn, tryon, fault)
    assert type(caught) is error
    assert caught.provider_code == (code or fault.code)
    assert fashn.recorded == []  # no prediction id was issued
    assert TEST_API_KEY not in str(caught) and TEST_API_KEY not in (caught.upstream_message or "")


async def test_a_wait_hint_arrives_only_when_fashn_sends_one(fashn: Fashn, tryon: Any) -> None:
    hinted = await failure(fashn, tryon, Fault(kind="rate_limit", retry_after=7))
    assert hinted.retry_after == 7
    bare = await failure(fashn, tryon, Fault(kind="rate_limit"))
    assert bare.retry_after is None


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("ImageLoadError", InputRejected),
        ("PoseError", InputRejected),
        ("InputValidationError", InputRejected),
        ("ContentModerationError", ContentRefused),
        ("PollingTimeout", ProviderTimeout),
        ("PipelineError", TaskFailed),
        ("ThirdPartyError", TaskFailed),
        ("3rdPartyProviderError", TaskFailed),
        ("InternalServerError", TaskFailed),
        ("LoRALoadError", TaskFailed),
    ],
)
async def test_runtime_errors_of_a_failed_prediction(
    fashn: Fashn, tryon: Any, name: str, error: type[ProviderError]
) -> None:
    caught = await failure(fashn, tryon, Fault(kind="task_failed", code=name))
    assert type(caught) is error and caught.provider_code == name
    assert caught.upstream_message  # FASHN's message, kept for the logs
    assert fashn.recorded and fashn.recorded[0] in str(caught)  # the prediction is named


@pytest.mark.parametrize(
    ("status", "error"), [("canceled", TaskFailed), ("time_out", ProviderTimeout)]
)
async def test_a_prediction_that_ends_canceled_or_timed_out(
    fashn: Fashn, tryon: Any, status: str, error: type[ProviderError]
) -> None:
    caught = await failure(fashn, tryon, Fault(kind="task_failed", code=status))
    assert type(caught) is error


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(kind="content_refused"), ContentRefused),
        (Fault(kind="invalid_input", code="PoseError"), InputRejected),
        (Fault(kind="task_failed"), TaskFailed),
    ],
)
async def test_refusals_stop_and_failures_fall_back(
    fashn: Fashn, tryon: Any, fault: Fault, error: type[ProviderError]
) -> None:
    caught = await failure(fashn, tryon, fault)
    assert type(caught) is error
    assert caught.fallback is (error is TaskFailed)


async def test_the_adapter_s_images_load_in_fashn_s_pipeline(fashn: Fashn, tryon: Any) -> None:
    await fashn.attempt(tryon())
    prediction = fashn.state.tasks[fashn.recorded[0]]
    assert prediction.status == "completed" and "load_error" not in prediction.data


async def test_a_completed_prediction_without_output_is_no_image(fashn: Fashn, tryon: Any) -> None:
    assert type(await failure(fashn, tryon, Fault(kind="no_image"))) is NoImage


@pytest.mark.parametrize("links", [False, True])
async def test_an_output_that_is_not_an_image_reaches_the_core_as_sent(
    fashn: Fashn, tryon: Any, links: bool
) -> None:
    # The core decodes every output and turns these bytes into BadResponse (the contract kit).
    fashn.state.inject(Fault(kind="bad_image"))
    images = await fashn.attempt(tryon(), return_base64=not links)
    assert [image.data for image in images] == [b"<html>not an image</html>"]


@pytest.mark.parametrize("code", [None, "shape"])
async def test_a_malformed_answer_is_a_bad_response(
    fashn: Fashn, tryon: Any, code: str | None
) -> None:
    assert type(await failure(fashn, tryon, Fault(kind="malformed", code=code))) is BadResponse
    caught = await failure(fashn, tryon, NOOP, *[Fault(kind="malformed", code=code)])
    assert type(caught) is BadResponse  # on a status query


async def test_transient_status_failures_are_waited_out(fashn: Fashn, tryon: Any) -> None:
    fashn.state.inject(
        NOOP,
        Fault(kind="server_error", status=502),
        Fault(kind="rate_limit", retry_after=1),
        Fault(kind="server_error"),
    )
    images = await fashn.attempt(tryon())
    assert len(images) == 1 and len(fashn.calls("POST", "/v1/run")) == 1


async def test_a_fourth_transient_failure_in_a_row_gives_up(fashn: Fashn, tryon: Any) -> None:
    caught = await failure(fashn, tryon, NOOP, *[Fault(kind="server_error")] * 4)
    assert type(caught) is ProviderUnavailable


async def test_a_refused_key_on_a_status_query_is_not_waited_out(fashn: Fashn, tryon: Any) -> None:
    caught = await failure(fashn, tryon, NOOP, Fault(kind="auth"))
    assert type(caught) is ProviderMisconfigured
    assert len(fashn.calls("GET", "/v1/status/")) == 1


async def test_a_wrong_base_url_is_misconfiguration_not_bad_input(fashn: Fashn, tryon: Any) -> None:
    with pytest.raises(ProviderMisconfigured) as caught:
        await fashn.attempt(tryon(), base_url=f"{fashn.url}/nowhere")
    assert caught.value.provider_code == "NotFound" and caught.value.fallback
