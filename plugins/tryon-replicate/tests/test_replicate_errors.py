"""Each way Replicate fails becomes the core's error class, with Replicate's code, the wait hint
when there is one, the request field at fault, and the right fallback: the faults the fake
injects, the 422s a wrong configuration or a bad option draws, and answers no fake renders."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest
from tryon_replicate import ReplicateAdapter, ReplicateConfig
from tryon_replicate.examples import IDM_VTON
from tryon_replicate.fake import TEST_TOKEN

from tryon_core.plugin import (
    BadResponse,
    ContentRefused,
    InputImage,
    InputRejected,
    NoImage,
    ProviderContext,
    ProviderError,
    ProviderMisconfigured,
    ProviderRequest,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
)
from tryon_core.testing import Fault

#: a fault that changes nothing, to let the next one reach a later call
PASS = Fault(kind="slow_task", seconds=0)


async def attempt(context: Any, person: InputImage, garment: InputImage, **fields: Any) -> Any:
    """One attempt; returns the images or the ProviderError."""
    ctx, _ = context(**fields.pop("config", {}))
    request = ProviderRequest(
        model=fields.pop("model", "replicate/idm-vton"),
        person=person,
        garments=(garment,),
        category="tops",
        **fields,
    )
    try:
        return await ReplicateAdapter(ctx.config).run(request, ctx)
    except ProviderError as error:
        return error


@pytest.mark.parametrize(
    ("faults", "cls", "code"),
    [
        ([Fault(kind="rate_limit", retry_after=7)], RateLimited, "429"),
        ([Fault(kind="quota")], ProviderMisconfigured, "402"),
        ([Fault(kind="auth")], ProviderMisconfigured, "401"),
        ([Fault(kind="server_error", status=503)], ProviderUnavailable, "503"),
        ([Fault(kind="server_error", status=504)], ProviderTimeout, "504"),
        ([Fault(kind="malformed")], BadResponse, "200"),
        ([Fault(kind="invalid_input")], InputRejected, "422"),
        ([Fault(kind="task_failed")], TaskFailed, "failed"),
        ([Fault(kind="content_refused")], ContentRefused, "nsfw"),
        ([Fault(kind="no_image")], NoImage, None),
        ([Fault(kind="bad_image")], None, None),  # the core's output check refuses the bytes
        # the same, met while polling rather than on create
        ([PASS, Fault(kind="rate_limit")], RateLimited, "429"),
        ([PASS, Fault(kind="server_error")], ProviderUnavailable, "500"),
        ([PASS, Fault(kind="task_failed", code="Killed: out of memory")], TaskFailed, "failed"),
        ([PASS, Fault(kind="content_refused")], ContentRefused, "nsfw"),
    ],
    ids=lambda v: "+".join(f.kind for f in v) if isinstance(v, list) else None,
)
async def test_a_fault_becomes_its_error(
    faults: list[Fault],
    cls: type[ProviderError] | None,
    code: str | None,
    context: Any,
    fake: Any,
    person: InputImage,
    garment: InputImage,
) -> None:
    fake.state.inject(*faults)
    result = await attempt(context, person, garment)
    if cls is None:
        assert isinstance(result, list) and not result[0].data.startswith(
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
        )
        return
    assert isinstance(result, cls), result
    assert result.provider_code == code
    assert TEST_TOKEN not in f"{result.message} {result.upstream_message}"
    if faults[-1].kind == "rate_limit" and faults[-1].retry_after:
        assert result.retry_after == 7
    if cls is InputRejected:
        assert result.param == "person_images" and not result.fallback
    if cls is ContentRefused:
        assert "NSFW" in (result.upstream_message or "") and not result.fallback
    if faults[-1].kind == "task_failed":
        assert result.fallback and result.upstream_message
        assert (faults[-1].code or "CUDA") in result.upstream_message  # Replicate's words kept


@pytest.mark.parametrize(
    ("change", "cls"),
    [
        # a category value the model's schema does not allow: the operator's mistake
        ({"categories": {"tops": "shirts"}}, ProviderMisconfigured),
        # the person photo mapped onto a name the model does not have: a required input missing
        ({"person": "human_image"}, ProviderMisconfigured),
        # a fixed input out of the model's range
        ({"inputs": {"steps": 400, "crop": False}}, ProviderMisconfigured),
        # a version Replicate does not know
        ({"version": "f" * 64}, ProviderMisconfigured),
        # a community model run by name: Replicate has no such official model
        ({"version": None}, ProviderMisconfigured),
    ],
    ids=["category value", "required input", "fixed input", "version", "by name"],
)
async def test_a_configuration_replicate_refuses_falls_back_as_misconfigured(
    change: dict[str, Any],
    cls: type[ProviderError],
    context: Any,
    person: InputImage,
    garment: InputImage,
) -> None:
    entry = {**IDM_VTON, **change}
    result = await attempt(
        context, person, garment, config={"models": {"replicate/idm-vton": entry}}
    )
    assert isinstance(result, cls), result
    assert result.fallback
    assert result.upstream_message  # Replicate's title and detail, for the operator's logs


async def test_an_option_replicate_refuses_names_the_option(
    context: Any, person: InputImage, garment: InputImage
) -> None:
    ctx, _ = context()
    from tryon_replicate import configured_models

    options = next(m for m in configured_models(ctx.config) if m.slug == "replicate/idm-vton")
    assert options.options is not None
    # the gateway validates options first; built directly, the bound is not checked here
    out_of_range = options.options(steps=99)
    result = await attempt(context, person, garment, options=out_of_range)
    assert isinstance(result, InputRejected), result
    assert result.param == "options.steps" and not result.fallback


async def test_resuming_a_prediction_replicate_no_longer_knows_fails_the_task(
    context: Any, fake: Any, person: InputImage, garment: InputImage
) -> None:
    ctx, _ = context(task_id="nosuchprediction")
    request = ProviderRequest(model="replicate/idm-vton", person=person, garments=(garment,))
    with pytest.raises(TaskFailed) as raised:
        await ReplicateAdapter(ctx.config).run(request, ctx)
    assert raised.value.provider_code == "404"
    assert fake.calls("create") == []


def mocked(handler: Any, **config: Any) -> ProviderContext:
    """A context whose HTTP client answers with ``handler`` (for answers no fake renders)."""
    settings = msgspec.convert(
        {
            "enabled": True,
            "api_token": "r8_secret-token",
            "base_url": "https://api.replicate.test",
            "poll_interval": 0.01,
            "models": {"replicate/idm-vton": IDM_VTON},
            **config,
        },
        ReplicateConfig,
    )

    async def record_task(task_id: str) -> None:
        return None

    return ProviderContext(
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        config=settings,
        timeout=5,
        record_task=record_task,
    )


def prediction(**fields: Any) -> dict[str, Any]:
    return {"id": "p1", "status": "starting", "output": None, "error": None, **fields}


@pytest.mark.parametrize(
    ("answers", "cls", "code"),
    [
        ([httpx.Response(201, json=["not", "an", "object"])], BadResponse, "201"),
        ([httpx.Response(201, json={"status": "starting"})], BadResponse, None),
        ([httpx.Response(201, json=prediction(status="queued"))], BadResponse, "queued"),
        (
            [
                httpx.Response(201, json=prediction()),
                httpx.Response(200, json=prediction(status="canceled")),
            ],
            TaskFailed,
            "canceled",
        ),
        (
            [
                httpx.Response(201, json=prediction()),
                httpx.Response(200, json=prediction(status="aborted")),
            ],
            ProviderUnavailable,
            "aborted",
        ),
        (
            [
                httpx.Response(201, json=prediction()),
                httpx.Response(200, json=prediction(status="succeeded", output=[])),
            ],
            NoImage,
            None,
        ),
        (
            [
                httpx.Response(201, json=prediction()),
                httpx.Response(
                    200, json=prediction(status="succeeded", output="data:image/png;base64,@@")
                ),
            ],
            BadResponse,
            None,
        ),
        (
            [httpx.Response(404, json={"detail": "Not found", "status": 404})],
            ProviderMisconfigured,
            "404",
        ),
        ([httpx.Response(413, text="Request Entity Too Large")], InputRejected, "413"),
    ],
    ids=[
        "not an object",
        "no id",
        "unknown status",
        "canceled",
        "aborted",
        "empty output",
        "bad data url",
        "unknown model",
        "too large",
    ],
)
async def test_answers_no_fake_renders(
    answers: list[httpx.Response],
    cls: type[ProviderError],
    code: str | None,
    person: InputImage,
    garment: InputImage,
) -> None:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "api.replicate.test"
        return queue.pop(0)

    ctx = mocked(handler)
    request = ProviderRequest(model="replicate/idm-vton", person=person, garments=(garment,))
    try:
        with pytest.raises(cls) as raised:
            await ReplicateAdapter(ctx.config).run(request, ctx)
    finally:
        await ctx.http.aclose()
    assert raised.value.provider_code == code


async def test_polls_go_to_base_url_whatever_urls_the_answer_names(
    person: InputImage, garment: InputImage
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        evil = {"get": "https://elsewhere.test/v1/predictions/p1"}
        if request.method == "POST":
            return httpx.Response(201, json=prediction(urls=evil))
        return httpx.Response(200, json=prediction(status="failed", error="boom", urls=evil))

    ctx = mocked(handler)
    request = ProviderRequest(model="replicate/idm-vton", person=person, garments=(garment,))
    try:
        with pytest.raises(TaskFailed):
            await ReplicateAdapter(ctx.config).run(request, ctx)
    finally:
        await ctx.http.aclose()
    assert seen == [
        "https://api.replicate.test/v1/predictions",
        "https://api.replicate.test/v1/predictions/p1",
    ]
