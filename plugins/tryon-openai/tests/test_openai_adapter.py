"""The adapter against the fake on 127.0.0.1: the exact request it sends, and what it returns."""

from __future__ import annotations

import base64
import io
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image
from tryon_openai import adapter as adapter_module
from tryon_openai.adapter import GptImageOptions, MiniOptions, OpenAIAdapter, OpenAIConfig
from tryon_openai.fake import create_app
from tryon_openai.plugin import MODELS
from tryon_openai.prompt import instruction

from tryon_core.fallback import run_attempt
from tryon_core.imaging import ImageLimits, load_image, sniff
from tryon_core.plugin import (
    BadResponse,
    InputImage,
    ProviderContext,
    ProviderMisconfigured,
    ProviderTimeout,
)
from tryon_core.testing import FakeState, Fault, mount_fakes, serve_app

Make = Callable[..., Any]


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def test_sends_one_multipart_edit_with_the_person_first(
    make_request: Make,
    make_context: Make,
    state: FakeState,
    person: InputImage,
    garment: InputImage,
    tasks: Any,
) -> None:
    outputs = await OpenAIAdapter().run(make_request(), make_context())

    [sent] = state.requests
    assert (sent.method, sent.path) == ("POST", "/v1/images/edits")
    assert sent.headers["authorization"] == "Bearer test-key"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert "openai-organization" not in sent.headers
    assert sent.summary["fields"] == {
        "model": "gpt-image-1",
        "prompt": instruction(garments=1, category="auto"),
        "n": "1",
        "output_format": "png",
        "size": "auto",
        "quality": "auto",
        "input_fidelity": "high",
    }
    assert sent.summary["parts"] == [
        {
            "name": "image[]",
            "filename": "person.png",
            "content_type": "image/png",
            "sniffed": "image/png",
            "bytes": len(person.data),
        },
        {
            "name": "image[]",
            "filename": "garment-1.jpg",
            "content_type": "image/jpeg",
            "sniffed": "image/jpeg",
            "bytes": len(garment.data),
        },
    ]
    [output] = outputs
    result = _decoded(output.data)
    assert (result.format, result.size) == ("PNG", (person.width, person.height))
    assert tasks.ids == []  # a synchronous call: no task to record or resume


async def test_mini_is_named_and_gets_no_input_fidelity(
    make_request: Make, make_context: Make, state: FakeState
) -> None:
    await OpenAIAdapter().run(make_request(model="openai/gpt-image-1-mini"), make_context())

    fields = state.requests[0].summary["fields"]
    assert fields["model"] == "gpt-image-1-mini"
    assert "input_fidelity" not in fields


async def test_garments_in_order_with_n_format_category_and_prompt(
    make_request: Make,
    make_context: Make,
    state: FakeState,
    garment: InputImage,
    webp_garment: InputImage,
) -> None:
    request = make_request(
        garments=(webp_garment, garment),
        category="tops",
        prompt="  tuck the shirt in  ",
        n=3,
        output_format="webp",
    )
    outputs = await OpenAIAdapter().run(request, make_context())

    sent = state.requests[0].summary
    assert [(p["name"], p["filename"], p["content_type"]) for p in sent["parts"]] == [
        ("image[]", "person.png", "image/png"),
        ("image[]", "garment-1.webp", "image/webp"),
        ("image[]", "garment-2.jpg", "image/jpeg"),
    ]
    assert [p["bytes"] for p in sent["parts"][1:]] == [len(webp_garment.data), len(garment.data)]
    assert sent["fields"]["n"] == "3"
    assert sent["fields"]["output_format"] == "webp"
    prompt = sent["fields"]["prompt"]
    assert prompt == instruction(garments=2, category="tops", prompt="tuck the shirt in")
    assert "images 2 and 3" in prompt
    assert prompt.endswith("tuck the shirt in")
    assert len(outputs) == 3
    assert {sniff(o.data) for o in outputs} == {"image/webp"}
    assert len({o.data for o in outputs}) == 3


async def test_quality_from_config(
    make_request: Make, make_context: Make, state: FakeState
) -> None:
    await OpenAIAdapter().run(make_request(), make_context(quality="low"))
    assert state.requests[0].summary["fields"]["quality"] == "low"


@pytest.mark.parametrize(
    ("model", "options", "sent"),
    [
        (
            "openai/gpt-image-1",
            GptImageOptions(quality="high", size="1024x1536", input_fidelity="low"),
            {"quality": "high", "size": "1024x1536", "input_fidelity": "low"},
        ),
        ("openai/gpt-image-1", GptImageOptions(size="1536x1024"), {"quality": "low"}),
        ("openai/gpt-image-1-mini", MiniOptions(quality="medium"), {"quality": "medium"}),
    ],
)
async def test_options_become_the_edit_fields_and_override_the_config(
    make_request: Make,
    make_context: Make,
    state: FakeState,
    model: str,
    options: Any,
    sent: dict[str, str],
) -> None:
    request = make_request(model=model, options=options)
    await OpenAIAdapter().run(request, make_context(quality="low"))

    fields = state.requests[0].summary["fields"]
    assert {name: fields[name] for name in sent} == sent
    assert fields["size"] == options.size
    assert ("input_fidelity" in fields) == (model == "openai/gpt-image-1")


async def test_organization_header_when_configured(
    make_request: Make, make_context: Make, http: Any
) -> None:
    state = FakeState()
    async with serve_app(create_app(organization="org-test", state=state)) as url:
        context = make_context(base_url=f"{url}/v1", organization="org-test")
        await OpenAIAdapter().run(make_request(), context)
    assert state.requests[0].headers["openai-organization"] == "org-test"


async def test_base_url_with_a_prefix_and_a_trailing_slash(
    make_request: Make, make_context: Make
) -> None:
    state = FakeState()
    async with serve_app(mount_fakes({"openai": create_app(state=state)})) as url:
        context = make_context(base_url=f"{url}/openai/v1/")
        outputs = await OpenAIAdapter().run(make_request(), context)
    assert len(outputs) == 1
    assert len(state.requests) == 1


async def test_base_url_without_v1_is_a_misconfiguration(
    make_request: Make, make_context: Make, fake_url: str
) -> None:
    with pytest.raises(ProviderMisconfigured) as caught:
        await OpenAIAdapter().run(make_request(), make_context(base_url=fake_url))
    assert caught.value.provider_code == "invalid_request_error"
    assert caught.value.upstream_message == "Invalid URL (POST /images/edits)"


def _noisy_png(width: int, height: int) -> InputImage:
    rng = random.Random(7)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return load_image(buffer.getvalue(), param="x", limits=ImageLimits())


async def test_inputs_over_the_byte_limit_are_re_encoded(
    make_request: Make,
    make_context: Make,
    state: FakeState,
    monkeypatch: pytest.MonkeyPatch,
    garment: InputImage,
) -> None:
    big = _noisy_png(200, 260)
    limit = len(big.data) // 2
    monkeypatch.setattr(adapter_module, "MAX_INPUT_BYTES", limit)

    await OpenAIAdapter().run(make_request(person=big), make_context())

    person_part, garment_part = state.requests[0].summary["parts"]
    assert person_part["content_type"] == person_part["sniffed"] == "image/jpeg"
    assert person_part["filename"] == "person.jpg"
    assert person_part["bytes"] <= limit
    assert garment_part["bytes"] == len(garment.data)  # fits already: sent as it is


async def test_slow_answer_still_succeeds(
    make_request: Make, make_context: Make, state: FakeState
) -> None:
    state.inject(Fault(kind="slow_task", seconds=0.3))
    started = time.monotonic()
    outputs = await OpenAIAdapter().run(make_request(), make_context())
    assert time.monotonic() - started >= 0.3
    assert len(outputs) == 1


async def test_a_hang_ends_as_a_timeout_and_a_bad_image_as_a_bad_response(
    make_request: Make, make_context: Make, state: FakeState
) -> None:
    """Run as the gateway runs an attempt: bounded by the timeout, the bytes checked."""
    state.inject("hang", "bad_image")
    adapter, request = OpenAIAdapter(), make_request()
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        context = make_context(timeout=0.5)
        await run_attempt(adapter, request, context, slug=request.model, limits=ImageLimits())
    assert time.monotonic() - started < 5
    with pytest.raises(BadResponse):
        context = make_context()
        await run_attempt(adapter, request, context, slug=request.model, limits=ImageLimits())


def test_request_field_names_match_the_capabilities() -> None:
    """Every slug the plugin registers has an upstream model name."""
    assert {m.slug for m in MODELS} == set(adapter_module.UPSTREAM_MODELS)


async def test_context_config_is_used_per_attempt(
    make_request: Make, make_context: Make, fake_url: str
) -> None:
    """One adapter serves contexts with different configs (the core passes config per call)."""
    adapter = OpenAIAdapter()
    good: ProviderContext = make_context()
    bad: ProviderContext = make_context(api_key="other-key")
    assert len(await adapter.run(make_request(), good)) == 1
    with pytest.raises(ProviderMisconfigured):
        await adapter.run(make_request(), bad)


async def test_the_form_goes_upstream_as_one_piece(make_request: Make, person: InputImage) -> None:
    # httpx would stream a form in some forty pieces, each its own socket write
    pieces: list[bytes] = []

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            assert isinstance(request.stream, httpx.AsyncByteStream)
            pieces.extend([piece async for piece in request.stream])
            encoded = base64.b64encode(person.data).decode()
            return httpx.Response(200, json={"data": [{"b64_json": encoded}]})

    async def record(task_id: str) -> None:
        raise AssertionError("a synchronous call records no task")

    async with httpx.AsyncClient(transport=Recording()) as client:
        context = ProviderContext(
            http=client,
            config=OpenAIConfig(enabled=True, api_key="test-key", base_url="http://upstream/v1"),
            timeout=5.0,
            record_task=record,
        )
        await OpenAIAdapter().run(make_request(), context)
    [body] = pieces
    assert body.count(b'name="image[]"') == 2
