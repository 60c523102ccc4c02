"""The adapter against the fake on 127.0.0.1: the exact request it sends, the image it returns."""

from __future__ import annotations

import base64
import io
import random
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Request, post
from PIL import Image
from tryon_gemini.adapter import build_body
from tryon_gemini.fake import create_app
from tryon_gemini.prompt import build_instruction
from tryon_gemini.wire import ASPECT_RATIOS, MAX_IMAGE_BYTES, MAX_REQUEST_BYTES, GeminiOptions

from tryon_core.plugin import InputImage, ProviderMisconfigured, TaskFailed
from tryon_core.testing import create_fake_app, mount_fakes, serve_app

PATH = "/v1beta/models/gemini-2.5-flash-image:generateContent"


class Capture:
    """A bare upstream that keeps the raw request and answers like Gemini."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def app(self) -> Any:
        @post("/{path:path}", status_code=200, media_type="application/json")
        async def anything(request: Request[Any, Any, Any]) -> bytes:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.requests.append((request.url.path, request.url.query, headers, body))
            return self.answer

        return create_fake_app([anything])


async def test_the_request_is_gemini_s_documented_wire_format(
    attempt: Any, tryon: Any, input_image: Any, picture: Any
) -> None:
    image = base64.b64encode(picture(40, 40)).decode()
    answer = {
        "candidates": [
            {"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": image}}]}}
        ]
    }
    capture = Capture(msgspec.json.encode(answer))
    person = input_image(300, 400, "JPEG")
    garments = (input_image(120, 90, "PNG"), input_image(90, 120, "WEBP"))
    async with serve_app(capture.app()) as url:
        run = attempt(base_url=url + "/")  # a trailing slash is not doubled
        await run.run(tryon(person, *garments, category="tops", prompt="loose fit"))
    [(path, query, headers, raw)] = capture.requests
    assert path == PATH
    assert query == ""  # the key never goes into the URL
    assert headers["x-goog-api-key"] == "test-key"
    assert "authorization" not in headers
    assert headers["content-type"] == "application/json"
    body = msgspec.json.decode(raw)
    assert set(body) == {"contents", "generationConfig"}
    assert body["generationConfig"] == {
        "responseModalities": ["IMAGE"],
        "imageConfig": {"aspectRatio": "3:4"},
    }
    [content] = body["contents"]
    assert content["role"] == "user"
    parts = content["parts"]
    # person first, then the garments in order, then the instruction naming them so
    assert [list(p) for p in parts] == [["inlineData"]] * 3 + [["text"]]
    sent = [p["inlineData"] for p in parts[:3]]
    assert [s["mimeType"] for s in sent] == ["image/jpeg", "image/png", "image/webp"]
    for blob, original in zip(sent, (person, *garments), strict=True):
        assert set(blob) == {"mimeType", "data"}
        assert not blob["data"].startswith("data:")
        assert base64.b64decode(blob["data"], validate=True) == original.data  # standard alphabet
    assert parts[3]["text"] == build_instruction(category="tops", garments=2, prompt="loose fit")
    assert "The first image is a photo of a person" in parts[3]["text"]
    assert "second and third images" in parts[3]["text"]


async def test_a_try_on_comes_back_as_the_fake_s_png_at_the_ratio_s_size(
    fake: Any, attempt: Any, tryon: Any, input_image: Any
) -> None:
    run = attempt()
    [data] = await run.run(tryon(input_image(640, 360, "JPEG")))
    with Image.open(io.BytesIO(data)) as made:
        assert made.format == "PNG"
        assert made.size == ASPECT_RATIOS["16:9"]
    [request] = fake.state.requests
    summary = request.summary
    assert summary["auth"] == ["header"]
    assert summary["casing"] == "camel"
    assert summary["base64"] in (["standard"], [])  # tiny images may use neither + nor /
    assert summary["mime_types"] == summary["sniffed"] == ["image/jpeg", "image/png"]
    assert summary["sizes"] == [(640, 360), (200, 200)]
    assert summary["aspect_ratio"] == "16:9"


async def test_an_aspect_ratio_option_overrides_the_person_photo_s(
    fake: Any, attempt: Any, tryon: Any, input_image: Any
) -> None:
    run = attempt()
    options = GeminiOptions(aspect_ratio="4:5")
    [data] = await run.run(tryon(input_image(640, 360, "JPEG"), options=options))
    with Image.open(io.BytesIO(data)) as made:
        assert made.size == ASPECT_RATIOS["4:5"]
    assert fake.state.requests[0].summary["aspect_ratio"] == "4:5"


async def test_the_response_id_is_recorded_as_the_attempt_s_task(attempt: Any, tryon: Any) -> None:
    run = attempt()
    await run.run(tryon())
    [task] = run.tasks
    assert len(task) == 23


async def test_resuming_does_not_call_gemini_again(fake: Any, attempt: Any, tryon: Any) -> None:
    run = attempt(task_id="mJ4zaM2nIJ3Pz7IPxoHO2AE")
    with pytest.raises(TaskFailed) as raised:
        await run.run(tryon())
    assert raised.value.provider_code == "NOT_RESUMABLE"
    assert fake.state.requests == []


async def test_a_base_url_with_a_path_prefix_is_kept(
    attempt: Any, tryon: Any, input_image: Any
) -> None:
    app = create_app()
    async with serve_app(mount_fakes({"gemini": app})) as url:
        [data] = await attempt(base_url=f"{url}/gemini").run(tryon())
    assert Image.open(io.BytesIO(data)).size == ASPECT_RATIOS["3:4"]
    assert [r.path for r in app.state.fake.requests] == [f"/gemini{PATH}"]


async def test_a_missing_key_is_a_configuration_error(fake: Any, attempt: Any, tryon: Any) -> None:
    run = attempt()
    run.context.config.api_key = None
    with pytest.raises(ProviderMisconfigured):
        await run.run(tryon())
    assert fake.state.requests == []


def noise(width: int, height: int) -> InputImage:
    """An incompressible PNG: random pixels."""
    rng = random.Random(width * 7919 + height)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=0)
    return InputImage(data=buffer.getvalue(), content_type="image/png", width=width, height=height)


def test_inputs_that_fit_are_sent_as_they_are(tryon: Any, input_image: Any) -> None:
    request = tryon(input_image(300, 400, "WEBP"), input_image(200, 200, "JPEG"))
    parts = msgspec.json.decode(build_body(request))["contents"][0]["parts"]
    assert base64.b64decode(parts[0]["inlineData"]["data"]) == request.person.data
    assert parts[0]["inlineData"]["mimeType"] == "image/webp"


def test_large_inputs_are_shrunk_until_the_whole_body_fits_20_mib(tryon: Any) -> None:
    big = noise(1600, 1500)  # ~7.2 MB each, raw
    assert len(big.data) > MAX_IMAGE_BYTES
    body = build_body(tryon(big, big, big))
    assert len(body) <= MAX_REQUEST_BYTES
    parts = msgspec.json.decode(body)["contents"][0]["parts"]
    for part in parts[:3]:
        data = base64.b64decode(part["inlineData"]["data"])
        assert len(data) <= (MAX_REQUEST_BYTES * 3 // 4) // 3
        with Image.open(io.BytesIO(data)) as shrunk:
            assert Image.MIME[str(shrunk.format)] == part["inlineData"]["mimeType"]
            # the aspect ratio survives the shrinking
            assert abs(shrunk.width / shrunk.height - 1600 / 1500) < 0.01


@pytest.mark.parametrize(
    ("width", "height", "ratio"),
    [(1000, 1000, "1:1"), (300, 400, "3:4"), (1080, 1920, "9:16"), (2560, 1080, "21:9")],
)
def test_the_output_ratio_follows_the_person_photo(
    tryon: Any, input_image: Any, width: int, height: int, ratio: str
) -> None:
    body = msgspec.json.decode(build_body(tryon(input_image(width, height))))
    assert body["generationConfig"]["imageConfig"]["aspectRatio"] == ratio


async def test_the_fake_accepts_what_the_adapter_sends_for_every_category(
    fake: Any, attempt: Any, tryon: Any, input_image: Any
) -> None:
    run = attempt()
    for category in ("auto", "tops", "bottoms", "one-pieces"):
        garments = (input_image(100, 100), input_image(100, 80, "JPEG"))
        await run.run(tryon(None, *garments, category=category, prompt="  "))
    assert len(fake.state.requests) == 4
    assert all(len(r.summary["mime_types"]) == 3 for r in fake.state.requests)


async def test_the_shared_client_is_used(attempt: Any, tryon: Any) -> None:
    seen: list[httpx.Request] = []
    run = attempt()

    async def spy(request: httpx.Request) -> None:
        seen.append(request)

    run.context.http.event_hooks["request"].append(spy)
    await run.run(tryon())
    assert [r.url.path for r in seen] == [PATH]
