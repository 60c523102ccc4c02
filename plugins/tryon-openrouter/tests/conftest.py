"""Fixtures: the fake on 127.0.0.1, the models the tests configure, images, an attempt context."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest
from PIL import Image, ImageDraw
from tryon_openrouter import OpenRouterAdapter, OpenRouterConfig
from tryon_openrouter.fake import TEST_API_KEY, create_app

from tryon_core.plugin import InputImage, OutputImage, ProviderContext, ProviderRequest
from tryon_core.testing import FakeState, serve_app
from tryon_core.testing.network import no_network  # noqa: F401  (autouse: loopback only)

GEMINI = "openrouter/gemini-2.5-flash-image"
FLUX = "openrouter/flux-2-pro"
#: The models the tests list in [providers.openrouter.models], as TOML would give them.
MODELS: dict[str, dict[str, Any]] = {
    GEMINI: {"upstream": "google/gemini-2.5-flash-image", "credits": 5},
    FLUX: {
        "upstream": "black-forest-labs/flux.2-pro",
        "credits": 4,
        "modalities": ["image"],
        "max_garments": 1,
        "image_config": ["aspect_ratio", "image_size"],
        "name": "FLUX.2 Pro via OpenRouter",
    },
}


def settings(**keys: Any) -> OpenRouterConfig:
    """A validated ``[providers.openrouter]`` section, enabled, with the test models."""
    values = {"enabled": True, "api_key": TEST_API_KEY, "models": MODELS, **keys}
    return msgspec.convert(values, OpenRouterConfig)


class Fake(msgspec.Struct):
    url: str
    state: FakeState


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    app = create_app()
    async with serve_app(app) as url:
        yield Fake(url, app.state.fake)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # like the gateway's client: no limit per call, the attempt as a whole is bounded
    async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10.0)) as client:
        yield client


class Attempt(msgspec.Struct):
    """One adapter run's surroundings: its context, the ids it recorded, the URLs it fetched."""

    context: ProviderContext
    tasks: list[str]
    fetched: list[str]

    async def run(self, request: ProviderRequest) -> list[OutputImage]:
        return await OpenRouterAdapter(self.context.config).run(request, self.context)


MakeAttempt = Callable[..., Attempt]


@pytest.fixture
def attempt(fake: Fake, http: httpx.AsyncClient) -> MakeAttempt:
    def make(*, timeout: float = 10.0, **keys: Any) -> Attempt:
        tasks: list[str] = []
        fetched: list[str] = []

        async def record_task(task_id: str) -> None:
            tasks.append(task_id)

        async def fetch(url: str) -> bytes:
            fetched.append(url)
            return (await http.get(url)).content

        config = settings(base_url=f"{fake.url}/api/v1", timeout=timeout, **keys)
        context = ProviderContext(
            http=http, config=config, timeout=timeout, record_task=record_task, fetch=fetch
        )
        return Attempt(context, tasks, fetched)

    return make


def photo(
    width: int, height: int, fmt: str = "PNG", colour: tuple[int, int, int] = (40, 90, 140)
) -> bytes:
    image = Image.new("RGB", (width, height), (235, 230, 220))
    ImageDraw.Draw(image).rectangle((width // 4, height // 4, width * 3 // 4, height), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def input_image(width: int, height: int, fmt: str = "PNG", **kw: Any) -> InputImage:
    """An image as the core hands it to an adapter (already checked and oriented)."""
    data = photo(width, height, fmt, **kw)
    return InputImage(data=data, content_type=_TYPES[fmt], width=width, height=height)  # type: ignore[arg-type]


def tryon(model: str = GEMINI, *garments: InputImage, **changes: Any) -> ProviderRequest:
    """A request: a 300x400 JPEG person and a red PNG garment unless told otherwise."""
    values: dict[str, Any] = {
        "model": model,
        "person": input_image(300, 400, "JPEG"),
        "garments": garments or (input_image(200, 200, "PNG", colour=(200, 30, 30)),),
        **changes,
    }
    return ProviderRequest(**values)


@pytest.fixture(name="tryon")
def _tryon() -> Callable[..., ProviderRequest]:
    return tryon


@pytest.fixture(name="input_image")
def _input_image() -> Callable[..., InputImage]:
    return input_image


@pytest.fixture(name="settings")
def _settings() -> Callable[..., OpenRouterConfig]:
    return settings
