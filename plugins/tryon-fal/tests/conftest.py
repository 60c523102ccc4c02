"""Fixtures for the fal plugin: sample images, the fake queue on 127.0.0.1, and a
``ProviderContext`` wired to it the way the core wires one."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from tryon_fal import FalConfig
from tryon_fal.fake import TEST_KEY, create_app

from tryon_core.imaging import ImageLimits, load_image
from tryon_core.plugin import InputImage, ProviderContext
from tryon_core.testing import FakeState, serve_app_in_thread

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def image(data: bytes, param: str = "image") -> InputImage:
    return load_image(data, param=param, limits=ImageLimits())


def encoded(picture: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def person() -> InputImage:
    return image((SAMPLES / "person.jpg").read_bytes(), "person")


@pytest.fixture(scope="session")
def garment() -> InputImage:
    return image((SAMPLES / "garment.png").read_bytes(), "garment")


@pytest.fixture(scope="session")
def webp_garment() -> InputImage:
    with Image.open(SAMPLES / "garment.png") as opened:
        return image(encoded(opened.convert("RGB"), "WEBP"), "garment")


@dataclass
class Fake:
    """The fake queue as a test sees it: its URL and its shared state."""

    url: str
    state: FakeState

    def calls(self, kind: str) -> list[Any]:
        return [r for r in self.state.requests if r.summary.get("call") == kind]


@dataclass
class Recorder:
    """What an attempt told the core, and in which order relative to the fake's calls."""

    fake: Fake
    tasks: list[str] = field(default_factory=list)
    calls_before_record: list[int] = field(default_factory=list)

    async def record_task(self, task_id: str) -> None:
        self.tasks.append(task_id)
        self.calls_before_record.append(len(self.fake.state.requests))


@pytest.fixture(scope="session")
def _fake_server() -> Iterator[Fake]:
    """One fake queue for the whole session, in a thread of its own (its own event loop)."""
    app = create_app(queue_seconds=0.02, run_seconds=0.02)
    with serve_app_in_thread(app) as url:
        yield Fake(url=url, state=app.state.fake)


@pytest.fixture
def fake(_fake_server: Fake) -> Fake:
    """The shared fake queue, forgotten faults, requests, files and tasks included."""
    _fake_server.state.reset()
    return _fake_server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


ContextFactory = Callable[..., tuple[ProviderContext, Recorder]]


@pytest.fixture
def context(fake: Fake, http: httpx.AsyncClient) -> ContextFactory:
    """``context(task_id=None, base_url=fake.url, **config)`` -> (ProviderContext, Recorder)."""

    def make(
        *, task_id: str | None = None, base_url: str | None = None, **config: Any
    ) -> tuple[ProviderContext, Recorder]:
        settings: dict[str, Any] = {"api_key": TEST_KEY, "poll_interval": 0.01, **config}
        recorder = Recorder(fake)

        async def fetch(url: str) -> bytes:
            response = await http.get(url)
            response.raise_for_status()
            return response.content

        return (
            ProviderContext(
                http=http,
                config=FalConfig(enabled=True, base_url=base_url or fake.url, **settings),
                timeout=10,
                record_task=recorder.record_task,
                fetch=fetch,
                task_id=task_id,
            ),
            recorder,
        )

    return make
