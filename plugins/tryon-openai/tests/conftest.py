"""Fixtures: the fake upstream on 127.0.0.1, an adapter context pointed at it, input images."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from PIL import Image
from tryon_openai.adapter import OpenAIConfig
from tryon_openai.fake import FAULTS, create_app

from tryon_core.imaging import ImageLimits, load_image
from tryon_core.plugin import InputImage, ProviderContext, ProviderRequest
from tryon_core.testing import FakeState, serve_app

API_KEY = "test-key"


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def picture(width: int, height: int, colour: tuple[int, int, int], fmt: str) -> InputImage:
    data = encode(Image.new("RGB", (width, height), colour), fmt)
    return load_image(data, param="x", limits=ImageLimits())


@pytest.fixture(scope="session")
def person() -> InputImage:
    return picture(96, 128, (200, 170, 150), "PNG")


@pytest.fixture(scope="session")
def garment() -> InputImage:
    return picture(80, 80, (20, 60, 200), "JPEG")


@pytest.fixture(scope="session")
def webp_garment() -> InputImage:
    return picture(72, 90, (200, 30, 30), "WEBP")


@pytest.fixture
def make_request(person: InputImage, garment: InputImage) -> Callable[..., ProviderRequest]:
    def make(**fields: Any) -> ProviderRequest:
        values: dict[str, Any] = {
            "model": "openai/gpt-image-1",
            "person": person,
            "garments": (garment,),
        }
        return ProviderRequest(**{**values, **fields})

    return make


@pytest.fixture
def state() -> FakeState:
    return FakeState(FAULTS)


@pytest.fixture
async def fake_url(state: FakeState) -> AsyncIterator[str]:
    """The fake's origin; the API lives under ``/v1`` as at api.openai.com."""
    async with serve_app(create_app(state=state)) as url:
        yield url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # Like the gateway's client: no time limit per call (the attempt as a whole is bounded).
    async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10.0)) as client:
        yield client


class Tasks:
    """Records what the adapter passes to ``record_task``."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    async def __call__(self, task_id: str) -> None:
        self.ids.append(task_id)


@pytest.fixture
def tasks() -> Tasks:
    return Tasks()


@pytest.fixture
def make_context(
    http: httpx.AsyncClient, fake_url: str, tasks: Tasks
) -> Callable[..., ProviderContext]:
    def make(*, timeout: float = 10.0, **config: Any) -> ProviderContext:
        settings: dict[str, Any] = {
            "enabled": True,
            "base_url": f"{fake_url}/v1",
            "api_key": API_KEY,
            "timeout": timeout,
        }
        # No ``fetch``: GPT image models answer with base64 only, never with links to download.
        return ProviderContext(
            http=http,
            config=OpenAIConfig(**{**settings, **config}),
            timeout=timeout,
            record_task=tasks,
        )

    return make
