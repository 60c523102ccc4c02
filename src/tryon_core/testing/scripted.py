"""A provider whose every answer a test scripts: images, typed errors, delays, hangs.

Register it as a plugin object (``create_app(settings, extra_plugins=[provider])``) and
enable it in the settings with ``[providers.scripted] enabled = true``::

    provider = ScriptedProvider()
    provider.script("scripted/alpha", RateLimited("busy", retry_after=3), "ok")
"""

from __future__ import annotations

import asyncio
import functools
import io
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

import msgspec
from PIL import Image

from tryon_core.hookspecs import hookimpl
from tryon_core.provider import (
    Capabilities,
    ModelSpec,
    OutputImage,
    ProviderConfig,
    ProviderContext,
    ProviderRequest,
    ProviderSpec,
)
from tryon_core.registry import Registrar

__all__ = ["Hang", "ScriptedConfig", "ScriptedProvider", "Sleep"]


class ScriptedConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    pass


class Sleep(msgspec.Struct, frozen=True):
    """Wait this long, then answer with images (or take the step ``then``)."""

    seconds: float
    then: Any = "ok"


class Hang(msgspec.Struct, frozen=True):
    """Never answer (until the core's timeout or a cancellation)."""


class Garbage(msgspec.Struct, frozen=True):
    """Answer with bytes that are not an image."""


Step = Any  # "ok" | "empty" | Sleep | Hang | Garbage | an Exception instance

DEFAULT_MODELS = (
    ModelSpec(
        slug="scripted/alpha",
        name="Scripted alpha",
        description="A scripted test model.",
        credits=3,
        capabilities=Capabilities(max_garments=2, max_outputs=4, supports_seed=True),
    ),
    ModelSpec(
        slug="scripted/beta",
        name="Scripted beta",
        description="A cheaper scripted test model.",
        credits=2,
        capabilities=Capabilities(max_garments=1, max_outputs=2, categories=("auto", "tops")),
    ),
    ModelSpec(
        slug="scripted/gamma",
        name="Scripted gamma",
        description="A dearer scripted test model with prompt support.",
        credits=5,
        capabilities=Capabilities(max_garments=4, max_outputs=4, uses_prompt=True),
    ),
)


class ScriptedProvider:
    """A plugin object; also the adapter of every model it registers."""

    def __init__(
        self, *, name: str = "scripted", models: Sequence[ModelSpec] | None = None
    ) -> None:
        self.name = name
        self.models = tuple(models or DEFAULT_MODELS)
        self.calls: list[ProviderRequest] = []
        self._scripts: dict[str, deque[Step]] = defaultdict(deque)

    def script(self, slug: str, *steps: Step) -> None:
        """Queue answers for ``slug``; once they run out, the model answers "ok"."""
        self._scripts[slug].extend(steps)

    def calls_to(self, slug: str) -> list[ProviderRequest]:
        return [call for call in self.calls if call.model == slug]

    @hookimpl
    def tryon_register_providers(self, registrar: Registrar) -> None:
        registrar.add_provider(
            ProviderSpec(
                name=self.name,
                config_type=ScriptedConfig,
                models=self.models,
                adapter_factory=lambda _config: self,
            )
        )

    async def run(self, request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        self.calls.append(request)
        queue = self._scripts[request.model]
        step = queue.popleft() if queue else "ok"
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, Hang):
            await asyncio.Event().wait()
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            step = step.then
            if isinstance(step, BaseException):
                raise step
        if isinstance(step, Garbage):
            return [OutputImage(data=b"<html>not an image</html>")]
        if step == "empty":
            return []
        return [OutputImage(data=_image(request, index)) for index in range(request.n)]


def _image(request: ProviderRequest, index: int) -> bytes:
    """A solid image the size of the person photo; its colour encodes the model and index."""
    shade = (sum(map(ord, request.model)) * 7 + index * 40) % 256
    return _solid(request.person.width, request.person.height, shade)


@functools.lru_cache(maxsize=64)
def _solid(width: int, height: int, shade: int) -> bytes:
    image = Image.new("RGB", (width, height), (shade, 90, 160))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
