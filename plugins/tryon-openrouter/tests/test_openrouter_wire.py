"""What the adapter sends OpenRouter, field by field, and what it makes of the answer.

Each request is captured as it leaves the HTTP client and also reaches the fake, which checks
it as OpenRouter would: a test passes only if the request is both what we mean and what
OpenRouter accepts.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from tryon_openrouter.fake import TEST_API_KEY
from tryon_openrouter.options import ASPECT_RATIOS, ImageConfigOptions, nearest_aspect_ratio
from tryon_openrouter.prompt import instruction
from tryon_openrouter.request import MAX_IMAGE_BYTES

from tryon_core.plugin import InputImage, ProviderRequest

GEMINI = "openrouter/gemini-2.5-flash-image"  # as conftest.py configures them
FLUX = "openrouter/flux-2-pro"
MakeAttempt = Callable[..., Any]
Fake = Any

Sent = list[httpx.Request]


@pytest.fixture
async def sent() -> Sent:
    return []


@pytest.fixture
async def http(sent: Sent) -> AsyncIterator[httpx.AsyncClient]:
    async def keep(request: httpx.Request) -> None:
        await request.aread()  # the adapter's body is sent once (SendOnce): keep a copy here
        sent.append(request)

    hooks = {"request": [keep]}
    async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10.0), event_hooks=hooks) as c:
        yield c


def body_of(request: httpx.Request) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(request.content)
    return value


def data_url_bytes(url: str) -> tuple[str, bytes]:
    header, _, encoded = url.partition(",")
    return header, base64.b64decode(encoded, validate=True)


async def test_a_try_on_is_one_chat_completion_text_first_then_the_images(
    attempt: MakeAttempt, sent: Sent, tryon: Callable[..., ProviderRequest], fake: Fake
) -> None:
    request = tryon(GEMINI, category="tops", prompt="  sleeves   rolled up ")
    outputs = await attempt().run(request)

    assert len(sent) == 1 and sent[0].method == "POST"
    assert sent[0].url == f"{fake.url}/api/v1/chat/completions"
    body = body_of(sent[0])
    assert list(body) == ["model", "messages", "modalities", "image_config", "stream"]
    assert body["model"] == "google/gemini-2.5-flash-image"  # OpenRouter's slug, not ours
    assert body["modalities"] == ["image", "text"]
    assert body["image_config"] == {"aspect_ratio": "3:4"}  # the 300x400 person photo's
    assert body["stream"] is False
    [message] = body["messages"]
    assert message["role"] == "user"
    text, *images = message["content"]
    assert text == {
        "type": "text",
        "text": instruction(category="tops", garments=1, prompt="sleeves rolled up"),
    }
    assert [part["type"] for part in images] == ["image_url", "image_url"]
    person = data_url_bytes(images[0]["image_url"]["url"])
    garment = data_url_bytes(images[1]["image_url"]["url"])
    assert person == ("data:image/jpeg;base64", request.person.data)  # sent as it came
    assert garment == ("data:image/png;base64", request.garments[0].data)

    [output] = outputs
    with Image.open(io.BytesIO(output.data)) as made:
        assert made.size == (request.person.width, request.person.height)


async def test_the_key_and_the_attribution_headers(
    attempt: MakeAttempt, sent: Sent, tryon: Callable[..., ProviderRequest]
) -> None:
    await attempt().run(tryon())
    await attempt(http_referer="https://shop.example", app_title="Shop try-on").run(tryon())
    bare, attributed = (request.headers for request in sent)
    assert bare["authorization"] == f"Bearer {TEST_API_KEY}"
    assert bare["content-type"] == "application/json"
    assert "http-referer" not in bare and "x-openrouter-title" not in bare
    assert attributed["http-referer"] == "https://shop.example"
    assert attributed["x-openrouter-title"] == "Shop try-on"


async def test_an_image_only_model_asks_for_images_only_and_takes_the_client_s_options(
    attempt: MakeAttempt, sent: Sent, tryon: Callable[..., ProviderRequest], fake: Fake
) -> None:
    options = msgspec.convert({"aspect_ratio": "16:9", "image_size": "2K"}, ImageConfigOptions)
    await attempt().run(tryon(FLUX, options=options))
    body = body_of(sent[0])
    assert body["model"] == "black-forest-labs/flux.2-pro"
    assert body["modalities"] == ["image"]
    assert body["image_config"] == {"aspect_ratio": "16:9", "image_size": "2K"}
    assert fake.state.requests[-1].summary["image_config"] == body["image_config"]


async def test_options_left_unset_are_not_sent_but_the_ratio_follows_the_person(
    attempt: MakeAttempt,
    sent: Sent,
    tryon: Callable[..., ProviderRequest],
    person_image: Callable[..., InputImage],
) -> None:
    wide = person_image(640, 360, "PNG")
    await attempt().run(tryon(FLUX, person=wide, options=ImageConfigOptions()))
    assert body_of(sent[0])["image_config"] == {"aspect_ratio": "16:9"}


async def test_a_model_without_image_config_keys_sends_none(
    attempt: MakeAttempt, sent: Sent, tryon: Callable[..., ProviderRequest]
) -> None:
    plain = {"upstream": "openai/gpt-5-image", "credits": 9, "image_config": []}
    await attempt(models={"openrouter/gpt-5-image": plain}).run(tryon("openrouter/gpt-5-image"))
    assert "image_config" not in body_of(sent[0])


async def test_data_collection_goes_as_a_provider_preference(
    attempt: MakeAttempt, sent: Sent, tryon: Callable[..., ProviderRequest], fake: Fake
) -> None:
    await attempt(data_collection="deny").run(tryon())
    assert body_of(sent[0])["provider"] == {"data_collection": "deny"}
    assert fake.state.requests[-1].summary["provider"] == {"data_collection": "deny"}


async def test_garments_follow_the_person_in_the_client_s_order(
    attempt: MakeAttempt,
    sent: Sent,
    tryon: Callable[..., ProviderRequest],
    garment_image: Callable[..., InputImage],
    fake: Fake,
) -> None:
    top = garment_image(120, 160, "WEBP", hue=1)
    skirt = garment_image(150, 150, "JPEG", hue=2)
    await attempt().run(tryon(GEMINI, top, skirt))
    _, *images = body_of(sent[0])["messages"][0]["content"]
    sent_images = [data_url_bytes(part["image_url"]["url"])[1] for part in images]
    assert sent_images[1:] == [top.data, skirt.data]
    assert fake.state.requests[-1].summary["image_types"] == [
        "image/jpeg",
        "image/webp",
        "image/jpeg",
    ]


async def test_a_large_image_is_re_encoded_to_fit(
    attempt: MakeAttempt, sent: Sent, tryon: Callable[..., ProviderRequest]
) -> None:
    noise = Image.frombytes("RGB", (1600, 1600), os.urandom(1600 * 1600 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    assert len(buffer.getvalue()) > MAX_IMAGE_BYTES
    person = InputImage(data=buffer.getvalue(), content_type="image/png", width=1600, height=1600)
    await attempt().run(tryon(GEMINI, person=person))
    _, first, _ = body_of(sent[0])["messages"][0]["content"]
    header, data = data_url_bytes(first["image_url"]["url"])
    assert header == "data:image/jpeg;base64" and len(data) <= MAX_IMAGE_BYTES


async def test_the_generation_id_is_recorded(
    attempt: MakeAttempt, tryon: Callable[..., ProviderRequest]
) -> None:
    run = attempt()
    await run.run(tryon())
    assert len(run.tasks) == 1 and run.tasks[0].startswith("gen-")


async def test_an_image_given_as_a_link_is_downloaded_through_context_fetch(
    tryon: Callable[..., ProviderRequest], answered: Callable[..., Any]
) -> None:
    """The answer's schema allows a URL instead of a data URL: it goes through the guard."""
    png = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(png, format="PNG")
    link = "https://cdn.openrouter.example/gen-1.png"
    image = {"type": "image_url", "image_url": {"url": link}}
    message = {"role": "assistant", "content": None, "images": [image]}
    answer = {
        "id": "gen-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
    }
    fetched: list[str] = []

    async def fetch(url: str) -> bytes:
        fetched.append(url)
        return png.getvalue()

    [output] = await answered(answer, tryon(), fetch)
    assert fetched == [link] and output.data == png.getvalue()


@given(width=st.integers(1, 8000), height=st.integers(1, 8000))
def test_the_ratio_sent_is_the_documented_one_nearest_the_person_photo(
    width: int, height: int
) -> None:
    chosen = nearest_aspect_ratio(width, height)
    assert chosen in ASPECT_RATIOS

    def distance(ratio: str) -> float:
        across, down = map(int, ratio.split(":"))
        return abs((width * down) / (height * across) - 1) + abs(
            (height * across) / (width * down) - 1
        )

    assert distance(chosen) <= min(distance(ratio) for ratio in ASPECT_RATIOS) + 1e-12
