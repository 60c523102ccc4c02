"""Fixtures: the fake on 127.0.0.1, the models the tests configure, images, an attempt context."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import msgspec
import pytest
from tryon_openrouter import OpenRouterAdapter, OpenRouterConfig
from tryon_openrouter.fake import TEST_API_KEY, create_app

from tryon_core.plugin import InputImage, OutputImage, ProviderContext, ProviderRequest
from tryon_core.testing import FakeState, serve_app, synthetic_garment, synthetic_person
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


_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def as_input(data: bytes, fmt: str, width: int, height: int) -> InputImage:
    """An image as the core hands it to an adapter (already checked and oriented)."""
    return InputImage(data=data, content_type=_TYPES[fmt], width=width, height=height)  # type: ignore[arg-type]


def person_image(width: int = 300, height: int = 400, fmt: str = "JPEG") -> InputImage:
    return as_input(synthetic_person(width, height, fmt), fmt, width, height)


def garment_image(
    width: int = 200, height: int = 200, fmt: str = "PNG", hue: int = 0
) -> InputImage:
    return as_input(synthetic_garment(width, height, fmt, hue), fmt, width, height)


def tryon(model: str = GEMINI, *garments: InputImage, **changes: Any) -> ProviderRequest:
    """A request: a 300x400 JPEG person and a 200x200 PNG garment unless told otherwise."""
    values: dict[str, Any] = {
        "model": model,
        "person": person_image(),
        "garments": garments or (garment_image(),),
        **changes,
    }
    return ProviderRequest(**values)


@pytest.fixture(name="tryon")
def _tryon() -> Callable[..., ProviderRequest]:
    return tryon


@pytest.fixture(name="person_image")
def _person_image() -> Callable[..., InputImage]:
    return person_image


@pytest.fixture(name="garment_image")
def _garment_image() -> Callable[..., InputImage]:
    return garment_image


@pytest.fixture(name="settings")
def _settings() -> Callable[..., OpenRouterConfig]:
    return settings


@pytest.fixture
def answered() -> Callable[..., Awaitable[list[OutputImage]]]:
    """Runs the adapter against one given HTTP 200 answer: for shapes no fault of the fake
    renders (an error inside a 200, an image given as a link)."""

    async def run(
        answer: dict[str, Any],
        request: ProviderRequest,
        fetch: Callable[[str], Awaitable[bytes]] | None = None,
    ) -> list[OutputImage]:
        async def record_task(task_id: str) -> None:
            return None

        config = settings(base_url="http://127.0.0.1:9/api/v1")
        extra = {} if fetch is None else {"fetch": fetch}
        transport = httpx.MockTransport(lambda _: httpx.Response(200, json=answer))
        async with httpx.AsyncClient(transport=transport) as http:
            context = ProviderContext(
                http=http, config=config, timeout=5, record_task=record_task, **extra
            )
            return await OpenRouterAdapter(config).run(request, context)

    return run
