"""The fake refuses what OpenRouter refuses, in OpenRouter's words, and answers in its shapes."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image
from tryon_openrouter.fake import PATH, TEST_API_KEY

from tryon_core.testing import FAULT_KINDS

AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}


def png(width: int = 96, height: int = 128, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 80, 40)).save(buffer, format=fmt)
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def chat(*urls: str, **fields: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": "Put the shirt on the person."}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return {
        "model": "google/gemini-2.5-flash-image",
        "messages": [{"role": "user", "content": parts}],
        "modalities": ["image", "text"],
        **fields,
    }


@pytest.fixture
async def client(fake: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url) as http:
        yield http


async def refused(client: httpx.AsyncClient, body: Any, **kw: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post(PATH, json=body, headers=kw.pop("headers", AUTH), **kw)
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == response.status_code  # OpenRouter: HTTP status = error.code
    return response.status_code, error


async def test_a_success_has_openrouter_s_shape(client: httpx.AsyncClient) -> None:
    person = png(90, 120)
    response = await client.post(
        PATH, json=chat(data_url(person), data_url(png(40, 40, "JPEG"), "image/jpeg")), headers=AUTH
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["id"].startswith("gen-") and answer["object"] == "chat.completion"
    assert answer["model"] == "google/gemini-2.5-flash-image"
    assert answer["provider"] == "Google AI Studio"
    assert {"prompt_tokens", "completion_tokens", "total_tokens"} <= set(answer["usage"])
    [choice] = answer["choices"]
    assert choice["finish_reason"] == "stop" and choice["index"] == 0
    message = choice["message"]
    assert message["role"] == "assistant" and message["content"]
    [image] = message["images"]
    assert image["type"] == "image_url"
    header, _, encoded = image["image_url"]["url"].partition(",")
    assert header == "data:image/png;base64"
    with Image.open(io.BytesIO(base64.b64decode(encoded))) as made:
        assert made.format == "PNG" and made.size == (90, 120)  # the first image: the person


async def test_without_the_image_modality_the_model_answers_in_text(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        PATH, json=chat(data_url(png()), modalities=["text"]), headers=AUTH
    )
    message = response.json()["choices"][0]["message"]
    assert "images" not in message and message["content"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "No auth credentials found"),
        ({"Authorization": "Bearer sk-or-v1-x"}, "User not found."),
    ],
)
async def test_credentials(
    client: httpx.AsyncClient, headers: dict[str, str], message: str
) -> None:
    assert await refused(client, chat(data_url(png())), headers=headers) == (
        401,
        {"code": 401, "message": message},
    )


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (chat(data_url(png()), n=2), 400, "Unrecognized key(s) in object: 'n'"),
        (chat(data_url(png()), stream=True), 400, "non-streaming"),
        (chat(data_url(png()), model="google/nope"), 400, "google/nope is not a valid model ID"),
        ({**chat(data_url(png())), "messages": []}, 400, 'specify "prompt" or "messages"'),
        (
            chat(data_url(png()), model="black-forest-labs/flux.2-pro"),
            404,
            "No endpoints found that support the requested output modalities: image, text",
        ),
        (chat(data_url(png()), modalities=["video"]), 400, "Invalid modality 'video'"),
        (chat(data_url(png()), image_config={"aspect_ratio": "7:5"}), 400, "aspect_ratio"),
        (chat(data_url(png()), image_config={"image_size": "4K"}), 400, "image_size"),
        (chat(data_url(png()), provider={"data_collection": "never"}), 400, "data_collection"),
        (chat(data_url(png()), provider={"sorting": "price"}), 400, "'sorting'"),
        (chat(data_url(png(), "image/jpeg")), 400, "says image/jpeg, not PNG"),
        (chat(data_url(png(), "image/bmp")), 400, "image/bmp is not"),
        (chat("data:image/png;base64,@@@"), 400, "cannot be decoded"),
        (chat("https://example.com/person.jpg"), 400, "cannot download"),
        ({**chat(), "messages": [{"role": "robot", "content": "hi"}]}, 400, "role"),
    ],
)
async def test_requests_openrouter_refuses(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, says: str
) -> None:
    code, error = await refused(client, body)
    assert code == status and says in error["message"], error


async def test_image_errors_carry_their_error_type(client: httpx.AsyncClient) -> None:
    _, error = await refused(client, chat("https://example.com/p.jpg"))
    assert error["metadata"]["error_type"] == "image_download_failed"
    _, error = await refused(client, chat(data_url(png(), "image/tiff")))
    assert error["metadata"]["error_type"] == "unsupported_image_format"


async def test_the_fake_offers_every_fault_and_records_every_call(
    client: httpx.AsyncClient, fake: Any
) -> None:
    assert (await client.get("/_fake/faults")).json() == {"supported": list(FAULT_KINDS)}
    await client.post(PATH, json=chat(data_url(png())))  # no key: refused, still recorded
    await client.post(PATH, json=chat(data_url(png())), headers=AUTH)
    recorded = (await client.get("/_fake/requests")).json()
    assert [r["summary"].get("refused") for r in recorded] == [401, None]
    assert recorded[1]["summary"]["modalities"] == ["image", "text"]


async def test_a_queued_fault_meets_the_next_call_only(
    client: httpx.AsyncClient,
) -> None:
    queued = await client.post("/_fake/faults", json=[{"kind": "rate_limit", "retry_after": 2.5}])
    assert queued.json() == {"queued": 1}
    limited = await client.post(PATH, json=chat(data_url(png())), headers=AUTH)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert limited.json()["error"]["metadata"] == {"error_type": "rate_limit_exceeded"}
    assert (await client.post(PATH, json=chat(data_url(png())), headers=AUTH)).status_code == 200
