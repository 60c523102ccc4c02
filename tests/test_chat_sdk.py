"""The official ``openai`` Python package against a real server on 127.0.0.1, used as users do.

``message.images`` is not a declared field of the SDK's types: it is kept as raw JSON through
``extra="allow"``, so an image is ``message.images[0]["image_url"]["url"]``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest

from tests.helpers import SAMPLES, data_url, live_server, new_key
from tryon_core.errors import ProviderUnavailable, RateLimited
from tryon_core.testing import ScriptedProvider

PERSON = data_url(SAMPLES / "person.jpg", "image/jpeg")
GARMENT = data_url(SAMPLES / "garment.png", "image/png")
MESSAGES: Any = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Put this shirt on this person"},
            {"type": "image_url", "image_url": {"url": PERSON}},
            {"type": "image_url", "image_url": {"url": GARMENT}},
        ],
    }
]


class Gateway:
    def __init__(self, url: str, app: Any) -> None:
        self.url = url
        self.app = app

    async def key(self, credits: int = 100) -> str:
        key, _ = await new_key(self.app, credits=credits)
        return key

    def clients(self, key: str) -> tuple[openai.AsyncOpenAI, openai.OpenAI]:
        base = self.url + "/api/v1"
        return (
            openai.AsyncOpenAI(base_url=base, api_key=key, max_retries=0),
            openai.OpenAI(base_url=base, api_key=key, max_retries=0),
        )


@pytest.fixture
def gateway(make_app: Callable[..., Any]) -> Callable[[], Any]:
    @asynccontextmanager
    async def start() -> AsyncIterator[Gateway]:
        app = make_app()
        async with live_server(app) as url:
            yield Gateway(url, app)

    return start


def png_of(url: str) -> bytes:
    prefix, encoded = url.split(",", 1)
    assert prefix == "data:image/png;base64"
    data = base64.b64decode(encoded)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return data


async def test_create_with_the_async_and_the_sync_client(gateway: Any) -> None:
    async with gateway() as gw:
        aclient, client = gw.clients(await gw.key())
        completion = await aclient.chat.completions.create(
            model="scripted/alpha", messages=MESSAGES
        )
        assert completion.object == "chat.completion"
        assert completion.model == "scripted/alpha"
        message = completion.choices[0].message
        assert message.role == "assistant" and message.content
        png_of(message.images[0]["image_url"]["url"])  # type: ignore[attr-defined]
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None and completion.usage.total_tokens == 0
        assert completion.usage.model_extra == {"credits": 3}

        synced = await asyncio.to_thread(
            client.chat.completions.create, model="scripted/alpha", messages=MESSAGES
        )
        (image,) = synced.choices[0].message.model_extra["images"]  # type: ignore[index]
        png_of(image["image_url"]["url"])
        await aclient.close()
        client.close()


async def test_extra_body_carries_tryon_options_and_the_fallback_list(
    gateway: Any, scripted: ScriptedProvider
) -> None:
    scripted.script("scripted/gamma", ProviderUnavailable("down"))
    async with gateway() as gw:
        aclient, _ = gw.clients(await gw.key())
        raw = await aclient.chat.completions.with_raw_response.create(
            model="scripted/gamma",
            messages=MESSAGES,
            modalities=["image", "text"],  # type: ignore[list-item]
            seed=5,
            extra_body={
                "models": ["scripted/alpha"],
                "tryon": {"category": "tops", "output_format": "png"},
            },
        )
        assert raw.headers["x-tryon-model"] == "scripted/alpha"
        completion = raw.parse()
        assert completion.model == "scripted/alpha"
        attempts = completion.model_extra["tryon"]["attempts"]  # type: ignore[index]
        assert [a["status"] for a in attempts] == ["failed", "succeeded"]
        await aclient.close()
    call = scripted.calls_to("scripted/alpha")[0]
    assert (call.category, call.seed) == ("tops", 5)


async def test_models_list(gateway: Any) -> None:
    async with gateway() as gw:
        aclient, client = gw.clients(await gw.key())
        ids = [model.id async for model in aclient.models.list()]
        assert ids[0] == "auto"
        assert {"scripted/alpha", "scripted/beta", "scripted/gamma"} <= set(ids)
        page = await asyncio.to_thread(client.models.list)
        assert [model.id for model in page.data] == ids
        await aclient.close()
        client.close()


async def test_the_sdk_raises_its_own_exception_classes(
    gateway: Any, scripted: ScriptedProvider
) -> None:
    async with gateway() as gw:
        key = await gw.key(credits=10)
        aclient, client = gw.clients(key)
        wrong, _ = gw.clients("sk-tryon-nope")

        with pytest.raises(openai.AuthenticationError) as unauthorized:
            await wrong.chat.completions.create(model="scripted/alpha", messages=MESSAGES)
        assert unauthorized.value.status_code == 401

        with pytest.raises(openai.NotFoundError) as missing:
            await aclient.chat.completions.create(model="nobody/nothing", messages=MESSAGES)
        assert missing.value.body["param"] == "model"  # type: ignore[index]

        with pytest.raises(openai.UnprocessableEntityError) as unprocessable:
            await aclient.chat.completions.create(model="scripted/alpha", messages=MESSAGES, n=9)
        assert unprocessable.value.body["param"] == "n"  # type: ignore[index]

        with pytest.raises(openai.BadRequestError) as bad:
            await aclient.chat.completions.create(
                model="scripted/alpha", messages=[{"role": "user", "content": "dress me"}]
            )
        assert bad.value.body["param"] == "messages[0].content"  # type: ignore[index]

        scripted.script("scripted/alpha", RateLimited("busy", retry_after=3))
        with pytest.raises(openai.RateLimitError) as limited:
            await asyncio.to_thread(
                client.chat.completions.create, model="scripted/alpha", messages=MESSAGES
            )
        assert limited.value.response.headers["retry-after"] == "3"

        poor, _ = gw.clients(await gw.key(credits=1))
        with pytest.raises(openai.APIStatusError) as unpaid:
            await poor.chat.completions.create(model="scripted/alpha", messages=MESSAGES)
        assert unpaid.value.status_code == 402
        assert unpaid.value.body["type"] == "payment_required"  # type: ignore[index]
        for each in (aclient, wrong, poor):
            await each.close()
        client.close()
