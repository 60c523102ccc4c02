"""Fixtures: the fake Kling API on 127.0.0.1, attempts run the way the gateway runs them."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from PIL import Image
from tryon_kling.adapter import KlingAdapter
from tryon_kling.fake import TEST_ACCESS_KEY, TEST_SECRET_KEY, create_app
from tryon_kling.models import KlingConfig

from tryon_core.egress import EgressPolicy, GuardedFetcher
from tryon_core.fallback import Produced, result_download, run_attempt
from tryon_core.imaging import ImageLimits, load_image
from tryon_core.plugin import InputImage, ProviderContext, ProviderError, ProviderRequest
from tryon_core.testing import FakeState, serve_app

LIMITS = ImageLimits()


def encoded(
    width: int, height: int, fmt: str = "JPEG", colour: tuple[int, ...] = (180, 90, 60)
) -> bytes:
    mode = "RGBA" if len(colour) == 4 else "RGB"
    buffer = io.BytesIO()
    Image.new(mode, (width, height), colour).save(buffer, format=fmt)
    return buffer.getvalue()


def photo(
    width: int = 400, height: int = 600, fmt: str = "JPEG", colour: tuple[int, ...] = (180, 90, 60)
) -> InputImage:
    """A checked input image, as the core hands it to an adapter."""
    return load_image(encoded(width, height, fmt, colour), param="test", limits=LIMITS)


def request(model: str = "kling/kolors-v1-5", **changes: Any) -> ProviderRequest:
    values: dict[str, Any] = {
        "model": model,
        "person": photo(),
        "garments": (photo(320, 320, "PNG", (20, 120, 200)),),
    }
    return ProviderRequest(**{**values, **changes})


@dataclass
class Kling:
    """The fake, and attempts against it through the gateway's own attempt runner."""

    url: str
    state: FakeState
    http: httpx.AsyncClient
    sent: list[httpx.Request] = field(default_factory=list)
    """Every request the adapter's client sent, bodies included."""
    tasks: list[tuple[str, int]] = field(default_factory=list)
    """Each recorded task id, with how many calls the fake had seen when it was recorded."""

    def settings(self, **changes: Any) -> KlingConfig:
        values = {
            "enabled": True,
            "base_url": self.url,
            "access_key": TEST_ACCESS_KEY,
            "secret_key": TEST_SECRET_KEY,
            "poll_interval": 0.02,
            "timeout": 10.0,
            **changes,
        }
        return KlingConfig(**values)

    async def attempt(
        self,
        req: ProviderRequest,
        *,
        adapter: KlingAdapter | None = None,
        task_id: str | None = None,
        on_task: Callable[[], None] | None = None,
        **config: Any,
    ) -> list[Produced]:
        settings = self.settings(**config)
        adapter = adapter or KlingAdapter(settings)
        host = self.url.removeprefix("http://").split("/")[0]
        fetcher = GuardedFetcher(EgressPolicy(allow_hosts=frozenset({host}), max_bytes=64 << 20))

        async def record_task(value: str) -> None:
            self.tasks.append((value, len(self.state.requests)))
            if on_task is not None:
                on_task()

        context = ProviderContext(
            http=self.http,
            config=settings,
            timeout=settings.timeout,
            record_task=record_task,
            fetch=result_download(fetcher, req.model),
            task_id=task_id,
        )
        try:
            return await run_attempt(adapter, req, context, slug=req.model, limits=LIMITS)
        finally:
            await fetcher.aclose()

    async def failure(self, req: ProviderRequest, **options: Any) -> ProviderError:
        try:
            produced = await self.attempt(req, **options)
        except ProviderError as error:
            return error
        raise AssertionError(f"the attempt succeeded with {len(produced)} image(s)")

    def calls(self, method: str | None = None) -> list[Any]:
        return [r for r in self.state.requests if method is None or r.method == method]


@pytest.fixture(name="photo")
def _photo() -> Any:
    return photo


@pytest.fixture(name="encoded")
def _encoded() -> Any:
    return encoded


@pytest.fixture(name="tryon_request")
def _request() -> Any:
    return request


@pytest.fixture
async def kling() -> AsyncIterator[Kling]:
    app = create_app()
    sent: list[httpx.Request] = []

    async def keep(outgoing: httpx.Request) -> None:
        sent.append(outgoing)

    async with (
        serve_app(app) as url,
        httpx.AsyncClient(timeout=10, event_hooks={"request": [keep]}) as http,
    ):
        yield Kling(url=url, state=app.state.fake, http=http, sent=sent)
