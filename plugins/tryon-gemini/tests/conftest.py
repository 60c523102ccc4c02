"""Fixtures for the gemini plugin: the fake served on 127.0.0.1, images, an attempt context."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest
from PIL import Image, ImageDraw
from tryon_gemini.adapter import SLUG, GeminiAdapter, GeminiConfig
from tryon_gemini.fake import TEST_API_KEY, create_app

from tryon_core.imaging import ImageLimits, load_image
from tryon_core.plugin import InputImage, ProviderContext, ProviderRequest
from tryon_core.testing import FakeState, serve_app


class Fake(msgspec.Struct):
    url: str
    state: FakeState


class Attempt(msgspec.Struct):
    """One adapter run's surroundings: the context and the task ids it recorded."""

    context: ProviderContext
    tasks: list[str]

    async def run(self, request: ProviderRequest) -> list[bytes]:
        outputs = await GeminiAdapter(self.context.config).run(request, self.context)
        return [output.data for output in outputs]


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    app = create_app()
    async with serve_app(app) as url:
        yield Fake(url, app.state.fake)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


MakeAttempt = Callable[..., Attempt]


@pytest.fixture
def attempt(fake: Fake, http: httpx.AsyncClient) -> MakeAttempt:
    def make(
        *,
        base_url: str | None = None,
        api_key: str = TEST_API_KEY,
        timeout: float = 10.0,
        **kw: Any,
    ) -> Attempt:
        tasks: list[str] = []

        async def record_task(task_id: str) -> None:
            tasks.append(task_id)

        async def fetch(url: str) -> bytes:
            return (await http.get(url)).content

        config = GeminiConfig(
            enabled=True, base_url=base_url or fake.url, api_key=api_key, timeout=timeout
        )
        context = ProviderContext(
            http=http, config=config, timeout=timeout, record_task=record_task, fetch=fetch, **kw
        )
        return Attempt(context, tasks)

    return make


def picture(
    width: int, height: int, fmt: str = "PNG", colour: tuple[int, int, int] = (40, 90, 140)
) -> bytes:
    """A plain test photo: a coloured block on a light background."""
    image = Image.new("RGB", (width, height), (235, 230, 220))
    ImageDraw.Draw(image).rectangle((width // 4, height // 4, width * 3 // 4, height), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def input_image(width: int, height: int, fmt: str = "PNG", **kw: Any) -> InputImage:
    return load_image(picture(width, height, fmt, **kw), param="x", limits=ImageLimits())


def tryon(
    person: InputImage | None = None, *garments: InputImage, **changes: Any
) -> ProviderRequest:
    """A request for the gemini model; a 300x400 JPEG person and a red PNG garment by default."""
    return ProviderRequest(
        model=SLUG,
        person=person or input_image(300, 400, "JPEG"),
        garments=garments or (input_image(200, 200, "PNG", colour=(200, 30, 30)),),
        **changes,
    )


@pytest.fixture(name="picture")
def _picture() -> Callable[..., bytes]:
    return picture


@pytest.fixture(name="input_image")
def _input_image() -> Callable[..., InputImage]:
    return input_image


@pytest.fixture(name="tryon")
def _tryon() -> Callable[..., ProviderRequest]:
    return tryon
