"""Fixtures: the fake FASHN API on 127.0.0.1, and attempts of the adapter against it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from tryon_fashn.adapter import FashnAdapter
from tryon_fashn.fake import TEST_API_KEY, create_app
from tryon_fashn.models import FashnConfig

from tryon_core.plugin import InputImage, OutputImage, ProviderContext, ProviderRequest
from tryon_core.testing import (
    FakeState,
    no_network,  # noqa: F401  (autouse: loopback only)
    serve_app,
    synthetic_garment,
    synthetic_person,
)

_PIL = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


def photo(
    width: int = 384, height: int = 512, content_type: str = "image/jpeg", *, garment: bool = False
) -> InputImage:
    """An input image as the core hands it to an adapter."""
    make = synthetic_garment if garment else synthetic_person
    data = make(width, height, _PIL[content_type])
    return InputImage(data=data, content_type=content_type, width=width, height=height)  # type: ignore[arg-type]


def tryon(model: str = "fashn/tryon-v1.6", **changes: Any) -> ProviderRequest:
    values: dict[str, Any] = {
        "model": model,
        "person": photo(),
        "garments": (photo(320, 320, "image/png", garment=True),),
    }
    return ProviderRequest(**{**values, **changes})


@dataclass
class Fashn:
    """The fake, an API client, and what one attempt recorded and downloaded."""

    url: str
    state: FakeState
    http: httpx.AsyncClient
    sent: list[httpx.Request] = field(default_factory=list)
    """Every request the API client sent, bodies included."""
    recorded: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)

    def config(self, **changes: Any) -> FashnConfig:
        values = {"enabled": True, "base_url": self.url, "api_key": TEST_API_KEY}
        return FashnConfig(**{**values, "poll_interval": 0.01, **changes})

    async def attempt(
        self, request: ProviderRequest, *, task_id: str | None = None, **config: Any
    ) -> list[OutputImage]:
        """``adapter.run`` as the gateway calls it; ``fetch`` reaches only the fake."""
        settings = self.config(**config)

        async def record_task(value: str) -> None:
            self.recorded.append(value)

        async def fetch(link: str) -> bytes:
            assert link.startswith(f"{self.url}/"), f"a download outside the fake: {link}"
            self.fetched.append(link)
            async with httpx.AsyncClient() as plain:  # no API key on a result download
                response = await plain.get(link)
            response.raise_for_status()
            return response.content

        context = ProviderContext(
            http=self.http,
            config=settings,
            timeout=settings.timeout,
            record_task=record_task,
            fetch=fetch,
            task_id=task_id,
        )
        return await FashnAdapter(settings).run(request, context)

    def calls(self, method: str, path: str = "") -> list[Any]:
        return [r for r in self.state.requests if r.method == method and path in r.path]

    def body(self) -> Any:
        """The JSON body of the last ``/v1/run`` the adapter sent."""
        runs = [r for r in self.sent if r.url.path.endswith("/v1/run")]
        return json.loads(runs[-1].content)

    def submitted(self) -> dict[str, Any]:
        """What the fake noted of the (last) accepted run: model_name, inputs, images."""
        return dict(self.calls("POST", "/v1/run")[-1].summary)


@pytest.fixture(name="photo")
def _photo() -> Any:
    """``photo(width, height, content_type, garment=False)``: an InputImage."""
    return photo


@pytest.fixture(name="tryon")
def _tryon() -> Any:
    """``tryon(model, **changes)``: a ProviderRequest with a person and a garment."""
    return tryon


@pytest.fixture
async def fashn() -> AsyncIterator[Fashn]:
    app = create_app()
    sent: list[httpx.Request] = []

    async def keep(outgoing: httpx.Request) -> None:
        sent.append(outgoing)

    hooks = {"request": [keep]}
    async with serve_app(app) as url, httpx.AsyncClient(timeout=10, event_hooks=hooks) as http:
        yield Fashn(url=url, state=app.state.fake, http=http, sent=sent)
