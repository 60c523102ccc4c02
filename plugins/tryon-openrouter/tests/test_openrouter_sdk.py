"""The official ``openai`` SDK, pointed at the fake as OpenRouter's clients point it at
``https://openrouter.ai/api/v1``, proves that the fake speaks OpenRouter's protocol: the SDK's
request passes the fake's checks, its answer and errors parse as they do from OpenRouter."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from PIL import Image
from tryon_openrouter.fake import TEST_API_KEY, create_app

from tryon_core.testing import FakeState, Fault, serve_app_in_thread


class Served:
    def __init__(self, client: openai.OpenAI, state: FakeState) -> None:
        self.client, self.state = client, state


@pytest.fixture
def served() -> Iterator[Served]:
    app = create_app()
    with serve_app_in_thread(app) as url:
        client = openai.OpenAI(
            base_url=f"{url}/api/v1",
            api_key=TEST_API_KEY,
            max_retries=0,
            default_headers={"HTTP-Referer": "https://shop.example", "X-Title": "Shop"},
        )
        with client:
            yield Served(client, app.state.fake)


def data_url(width: int, height: int, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 60, 90)).save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def ask(served: Served, **extra: Any) -> Any:
    return served.client.chat.completions.create(
        model="google/gemini-2.5-flash-image",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Dress the person in the garment."},
                    {"type": "image_url", "image_url": {"url": data_url(120, 160)}},
                    {"type": "image_url", "image_url": {"url": data_url(60, 60, "JPEG")}},
                ],
            }
        ],
        extra_body={"modalities": ["image", "text"], **extra},
    )


def test_the_sdk_reads_the_images_of_a_completion(served: Served) -> None:
    completion = ask(served, image_config={"aspect_ratio": "3:4"})
    assert completion.id.startswith("gen-")
    assert completion.choices[0].finish_reason == "stop"
    message = completion.choices[0].message
    images = message.images  # type: ignore[attr-defined]  # kept by the SDK's extra="allow"
    assert isinstance(images, list) and images[0]["type"] == "image_url"
    _, _, encoded = images[0]["image_url"]["url"].partition(",")
    with Image.open(io.BytesIO(base64.b64decode(encoded))) as made:
        assert made.size == (120, 160)
    assert completion.usage is not None and completion.usage.total_tokens > 0
    [request] = served.state.requests
    assert request.summary["image_config"] == {"aspect_ratio": "3:4"}
    assert request.headers["http-referer"] == "https://shop.example"


def test_the_sdk_raises_its_own_errors_for_openrouter_s(served: Served) -> None:
    served.state.inject(Fault(kind="rate_limit", retry_after=2))
    with pytest.raises(openai.RateLimitError) as limited:
        ask(served)
    assert limited.value.response.headers["retry-after"] == "2"
    assert limited.value.body == {
        "code": 429,
        "message": "Rate limit exceeded",
        "metadata": {"error_type": "rate_limit_exceeded"},
    }

    served.state.inject(Fault(kind="quota"))
    with pytest.raises(openai.APIStatusError) as broke:  # 402 has no class of its own
        ask(served)
    assert broke.value.status_code == 402
    assert broke.value.body["metadata"]["limit_source"] == "openrouter_credits"  # type: ignore[index]

    served.state.inject(Fault(kind="content_refused"))
    with pytest.raises(openai.PermissionDeniedError) as flagged:
        ask(served)
    assert flagged.value.body["metadata"]["reasons"] == ["sexual/minors"]  # type: ignore[index]

    with pytest.raises(openai.NotFoundError, match="output modalities"):
        served.client.chat.completions.create(
            model="black-forest-labs/flux.2-pro",
            messages=[{"role": "user", "content": "a shirt"}],
            extra_body={"modalities": ["image", "text"]},
        )


def test_the_sdk_s_key_is_checked(served: Served) -> None:
    other = served.client.with_options(api_key="sk-or-v1-someone-else")
    with pytest.raises(openai.AuthenticationError, match="User not found"):
        other.chat.completions.create(
            model="google/gemini-2.5-flash-image",
            messages=[{"role": "user", "content": "hello"}],
        )
