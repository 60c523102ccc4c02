"""Fixtures for the Replicate plugin: photos, the fake API on 127.0.0.1, the configured models
of the README's examples, and a ``ProviderContext`` wired to the fake the way the core wires
one."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import pytest
from PIL import Image
from tryon_replicate import ReplicateConfig
from tryon_replicate.examples import EXAMPLES
from tryon_replicate.fake import TEST_TOKEN, create_app
from tryon_replicate.fake_models import OUTFIT_ENTRY

from tryon_core.plugin import InputImage, ProviderContext
from tryon_core.testing import (
    FakeState,
    no_network,  # noqa: F401  (autouse: loopback only)
    serve_app_in_thread,
    synthetic_garment,
    synthetic_person,
)

MODELS: dict[str, dict[str, Any]] = {**EXAMPLES, "tryon-test/outfit": OUTFIT_ENTRY}
"""The README's examples and the fake's made-up model, as `[providers.replicate.models]`."""


def encoded(width: int, height: int, fmt: str = "JPEG", person: bool = True) -> bytes:
    if person:
        return synthetic_person(width, height, fmt)
    return synthetic_garment(width, height, fmt)


def photo(
    width: int = 384, height: int = 512, fmt: str = "JPEG", person: bool = True
) -> InputImage:
    """An input image as the core hands one to an adapter (sniffed, sized)."""
    data = encoded(width, height, fmt, person)
    with Image.open(io.BytesIO(data)) as opened:
        size = opened.size
    mime = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}[fmt]
    return InputImage(data=data, content_type=mime, width=size[0], height=size[1])  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def make_photo() -> Callable[..., InputImage]:
    """``make_photo(width, height, fmt, person=True)``: a person (or garment) input image."""
    return photo


@pytest.fixture(scope="session")
def person() -> InputImage:
    return photo(384, 512)


@pytest.fixture(scope="session")
def garment() -> InputImage:
    return photo(320, 320, "PNG", person=False)


@dataclass
class Fake:
    """The fake API as a test sees it: its URL and its shared state."""

    url: str
    state: FakeState

    def calls(self, kind: str) -> list[Any]:
        return [r for r in self.state.requests if r.summary.get("call") == kind]


@pytest.fixture(scope="session")
def _fake_server() -> Iterator[Fake]:
    """One fake for the whole session, in a thread of its own (its own event loop)."""
    app = create_app(run_seconds=0.02)
    with serve_app_in_thread(app) as url:
        yield Fake(url=url, state=app.state.fake)


@pytest.fixture
def fake(_fake_server: Fake) -> Fake:
    """The shared fake, forgotten faults, requests, files and predictions included."""
    _fake_server.state.reset()
    return _fake_server


@pytest.fixture
def sent() -> list[httpx.Request]:
    """Every request the adapter's HTTP client sent, bytes and headers as they left."""
    return []


@pytest.fixture
async def http(sent: list[httpx.Request]) -> AsyncIterator[httpx.AsyncClient]:
    async def keep(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(timeout=10, event_hooks={"request": [keep]}) as client:
        yield client


@dataclass
class Recorder:
    """What an attempt told the core, and how many calls the fake had seen by then."""

    fake: Fake
    tasks: list[str] = field(default_factory=list)
    calls_before_record: list[int] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    recorded: asyncio.Event = field(default_factory=asyncio.Event)

    async def record_task(self, task_id: str) -> None:
        self.tasks.append(task_id)
        self.recorded.set()
        self.calls_before_record.append(len(self.fake.state.requests))

    async def report_state(self, state: str) -> None:
        self.states.append(state)


def replicate_config(base_url: str, **changes: Any) -> ReplicateConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "api_token": TEST_TOKEN,
        "base_url": base_url,
        "poll_interval": 0.01,
        "models": MODELS,
        **changes,
    }
    return msgspec.convert(values, ReplicateConfig)


ContextFactory = Callable[..., tuple[ProviderContext, Recorder]]


@pytest.fixture
def context(fake: Fake, http: httpx.AsyncClient) -> ContextFactory:
    """``context(task_id=None, **config)`` -> (ProviderContext, Recorder)."""

    def make(*, task_id: str | None = None, **config: Any) -> tuple[ProviderContext, Recorder]:
        recorder = Recorder(fake)

        async def fetch(url: str) -> bytes:
            assert url.startswith(fake.url), url  # result links stay on the fake's origin
            response = await http.get(url)
            response.raise_for_status()
            return response.content

        return (
            ProviderContext(
                http=http,
                config=replicate_config(fake.url, **config),
                timeout=10,
                record_task=recorder.record_task,
                report_state=recorder.report_state,
                fetch=fetch,
                task_id=task_id,
            ),
            recorder,
        )

    return make
