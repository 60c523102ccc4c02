"""Every fault the fake injects, on every queue call where fal can show it, becomes the core's
error class with fal's own code, the wait hint when there is one, and never the key."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from tryon_fal import ENDPOINTS, FalAdapter
from tryon_fal.fake import create_app

from tryon_core.fallback import run_attempt
from tryon_core.imaging import ImageLimits
from tryon_core.plugin import (
    BadResponse,
    ContentRefused,
    InputRejected,
    NoImage,
    ProviderError,
    ProviderMisconfigured,
    ProviderRequest,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
)
from tryon_core.testing import Fault, serve_app

KEY = "fal-key-id:fal-key-secret-123"
#: a fault that changes nothing, to let the next one reach a later call
PASS = Fault(kind="slow_task", seconds=0)


async def attempt(context: Any, slug: str, person: Any, garment: Any, **options: Any) -> Any:
    """One attempt as the gateway runs it; returns the images or the ProviderError."""
    request = ProviderRequest(model=slug, person=person, garments=(garment,), **options)
    try:
        return await run_attempt(
            FalAdapter(context.config), request, context, slug=slug, limits=ImageLimits()
        )
    except ProviderError as error:
        return error


def assert_fails(result: Any, cls: type[ProviderError], code: Any = None) -> ProviderError:
    assert isinstance(result, cls), result
    if code is not None:
        assert result.provider_code == str(code)
    return result


@pytest.mark.parametrize(
    ("fault", "cls", "code"),
    [
        (Fault(kind="rate_limit", retry_after=7), RateLimited, 429),
        (Fault(kind="rate_limit"), RateLimited, 429),
        (Fault(kind="quota"), ProviderMisconfigured, 403),
        (Fault(kind="auth"), ProviderMisconfigured, 401),
        (Fault(kind="server_error"), ProviderUnavailable, 500),
        (Fault(kind="server_error", status=502), ProviderUnavailable, 502),
        (Fault(kind="server_error", status=503), ProviderUnavailable, "runner_scheduling_failure"),
        (Fault(kind="server_error", status=504), ProviderTimeout, "request_timeout"),
        (Fault(kind="malformed"), BadResponse, 200),
        (Fault(kind="no_image"), NoImage, None),
        (Fault(kind="bad_image"), BadResponse, None),
        (Fault(kind="content_refused"), ContentRefused, "content_policy_violation"),
        (Fault(kind="invalid_input"), InputRejected, "face_detection_error"),
        (Fault(kind="task_failed"), TaskFailed, "error"),
        (Fault(kind="task_failed", code="runner_disconnected"), ProviderUnavailable, None),
        (Fault(kind="task_failed", code="request_timeout"), ProviderTimeout, None),
    ],
    ids=lambda v: (
        v.kind + (f"-{v.status}" if v.kind == "server_error" else "")
        if isinstance(v, Fault)
        else None
    ),
)
async def test_a_fault_on_submit_becomes_its_error(
    fault: Fault,
    cls: type[ProviderError],
    code: Any,
    fake: Any,
    context: Any,
    person: Any,
    garment: Any,
) -> None:
    fake.state.inject(fault)
    ctx, _ = context()
    error = assert_fails(await attempt(ctx, "fal/fashn-tryon-v1.6", person, garment), cls, code)
    if fault.kind == "rate_limit":
        assert error.retry_after == fault.retry_after
    assert error.fallback is (cls not in (ContentRefused, InputRejected))


@pytest.mark.parametrize("slug", sorted(ENDPOINTS))
async def test_no_image_in_each_apps_output_shape(
    slug: str, fake: Any, context: Any, person: Any, garment: Any
) -> None:
    fake.state.inject("no_image")
    ctx, _ = context()
    assert_fails(await attempt(ctx, slug, person, garment), NoImage)


@pytest.mark.parametrize("slug", ["fal/flux-kontext-pro", "fal/leffa", "fal/kling-kolors-v1-5"])
async def test_a_flagged_output_is_a_content_refusal(
    slug: str, fake: Any, context: Any, person: Any, garment: Any
) -> None:
    fake.state.inject(Fault(kind="content_refused", code="nsfw_output"))
    ctx, _ = context()
    error = assert_fails(await attempt(ctx, slug, person, garment), ContentRefused)
    # Kontext and Leffa flag images in has_nsfw_concepts; Kolors refuses with a 422
    expected = "content_policy_violation" if "kling" in slug else "has_nsfw_concepts"
    assert error.provider_code == expected


@pytest.mark.parametrize(
    ("fault", "cls", "code"),
    [
        (Fault(kind="rate_limit", retry_after=3), RateLimited, 429),
        (Fault(kind="server_error", status=503), ProviderUnavailable, "runner_scheduling_failure"),
        (Fault(kind="malformed"), BadResponse, 200),
        (Fault(kind="auth"), ProviderMisconfigured, 401),
        (Fault(kind="quota"), ProviderMisconfigured, 403),
        (Fault(kind="task_failed", code="runner_disconnected"), ProviderUnavailable, None),
        (Fault(kind="invalid_input"), InputRejected, "face_detection_error"),
    ],
)
async def test_a_fault_on_a_status_poll_becomes_its_error(
    fault: Fault,
    cls: type[ProviderError],
    code: Any,
    fake: Any,
    context: Any,
    person: Any,
    garment: Any,
) -> None:
    fake.state.inject(PASS, fault)  # the submit passes, the first status poll fails
    ctx, _ = context()
    error = assert_fails(await attempt(ctx, "fal/flux-kontext-pro", person, garment), cls, code)
    assert error.retry_after == fault.retry_after
    assert len(fake.calls("submit")) == 1 and fake.calls("status")[0].summary["fault"]


@pytest.mark.parametrize(
    ("fault", "cls", "code"),
    [
        (Fault(kind="rate_limit"), RateLimited, 429),
        (Fault(kind="server_error", status=500), ProviderUnavailable, 500),
        (Fault(kind="malformed"), BadResponse, 200),
        (Fault(kind="content_refused"), ContentRefused, "content_policy_violation"),
        (Fault(kind="bad_image"), BadResponse, None),
    ],
)
async def test_a_fault_on_the_result_becomes_its_error(
    fault: Fault,
    cls: type[ProviderError],
    code: Any,
    fake: Any,
    context: Any,
    person: Any,
    garment: Any,
) -> None:
    ctx, recorder = context()
    await attempt(ctx, "fal/cat-vton", person, garment)  # done: status answers COMPLETED at once
    fake.state.inject(PASS, fault)  # the status poll passes, the result call fails
    resumed, _ = context(task_id=recorder.tasks[0])
    assert_fails(await attempt(resumed, "fal/cat-vton", person, garment), cls, code)
    assert fake.calls("result")[-1].summary["fault"] == fault.kind


async def test_a_request_stuck_in_fals_queue_ends_as_a_timeout(
    fake: Any, context: Any, person: Any, garment: Any
) -> None:
    fake.state.inject("hang")  # accepted, then never completes
    ctx, recorder = context()
    ctx.timeout = 0.5
    started = time.monotonic()
    assert_fails(await attempt(ctx, "fal/leffa", person, garment), ProviderTimeout)
    assert 0.5 <= time.monotonic() - started < 3
    assert len(recorder.tasks) == 1 and len(fake.calls("status")) >= 3


async def test_a_status_call_that_never_answers_ends_as_a_timeout(
    fake: Any, context: Any, person: Any, garment: Any
) -> None:
    fake.state.inject(PASS, "hang")
    ctx, _ = context()
    ctx.timeout = 0.5
    assert_fails(await attempt(ctx, "fal/leffa", person, garment), ProviderTimeout)


async def test_a_slow_request_is_waited_for(
    fake: Any, context: Any, person: Any, garment: Any
) -> None:
    fake.state.inject(Fault(kind="slow_task", seconds=0.5))
    ctx, _ = context()
    started = time.monotonic()
    images = await attempt(ctx, "fal/kling-kolors-v1-5", person, garment, output_format="webp")
    assert time.monotonic() - started >= 0.5
    assert [i.content_type for i in images] == ["image/webp"]
    statuses = {r.summary["call"] for r in fake.state.requests}
    assert statuses == {"submit", "status", "result"}


async def test_the_fake_shows_every_queue_state_while_polled(
    context: Any, person: Any, garment: Any
) -> None:
    app = create_app(queue_seconds=0.15, run_seconds=0.15)
    async with serve_app(app) as url:
        ctx, _ = context(base_url=url, poll_interval=0.02)
        images = await attempt(ctx, "fal/flux-kontext-pro", person, garment, n=2)
    assert len(images) == 2
    assert len([r for r in app.state.fake.requests if r.summary["call"] == "status"]) >= 4


async def test_no_error_shows_the_key(person: Any, garment: Any, context: Any) -> None:
    app = create_app(api_key=KEY)
    kinds = [
        Fault(kind="rate_limit", retry_after=1),
        Fault(kind="quota"),
        Fault(kind="auth"),
        Fault(kind="server_error", status=503),
        Fault(kind="malformed"),
        Fault(kind="no_image"),
        Fault(kind="bad_image"),
        Fault(kind="content_refused"),
        Fault(kind="invalid_input"),
        Fault(kind="task_failed"),
    ]
    async with serve_app(app) as url:
        for fault in [*kinds, None]:
            if fault is not None:
                app.state.fake.inject(fault)
            ctx, _ = context(base_url=url, api_key=KEY if fault is not None else "wrong:key")
            error = await attempt(ctx, "fal/flux-kontext-pro", person, garment)
            assert isinstance(error, ProviderError), fault
            shown = f"{error} {error.message} {error.upstream_message} {error.provider_code}"
            assert KEY not in shown and "fal-key-secret" not in shown, fault
            assert "wrong:key" not in shown


async def test_many_requests_at_once_each_get_their_own_images(
    fake: Any, context: Any, person: Any, garment: Any
) -> None:
    ctx, recorder = context()
    slugs = sorted(ENDPOINTS)
    results = await asyncio.gather(*(attempt(ctx, s, person, garment) for s in slugs))
    assert all(isinstance(r, list) and len(r) == 1 for r in results), results
    assert len(set(recorder.tasks)) == len(slugs)
