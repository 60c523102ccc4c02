"""tryon-example: the smallest complete tryon-core provider plugin.

It serves one model, ``example/mirror``, which returns the person photo mirrored and ignores
the garment. It needs no key and no network: it exists to show the plugin seam end to end.
"""

from __future__ import annotations

import asyncio
import io
from typing import Literal

from PIL import Image, ImageOps

from tryon_core.plugin import (
    Capabilities,
    ModelSpec,
    OutputImage,
    ProviderConfig,
    ProviderContext,
    ProviderRequest,
    ProviderSpec,
    Registrar,
    hookimpl,
)

MODEL = ModelSpec(
    slug="example/mirror",
    name="Mirror (example)",
    description="Returns the person photo mirrored; ignores the garment. A plugin example.",
    credits=1,  # per output image; the operator can override it in [models."example/mirror"]
    capabilities=Capabilities(max_garments=1, max_outputs=1),
)


class ExampleConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    """``[providers.example]``: enabled, base_url and timeout come from ProviderConfig."""

    direction: Literal["horizontal", "vertical"] = "horizontal"


class MirrorAdapter:
    """Built once at start-up with the validated config; serves every request after that."""

    def __init__(self, config: ExampleConfig) -> None:
        self.config = config

    async def run(self, request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        # Pillow is CPU-bound: keep it off the event loop.
        return [await asyncio.to_thread(self._mirror, request.person.data)]

    def _mirror(self, data: bytes) -> OutputImage:
        with Image.open(io.BytesIO(data)) as person:
            if self.config.direction == "horizontal":
                turned = ImageOps.mirror(person)
            else:
                turned = ImageOps.flip(person)
        buffer = io.BytesIO()
        turned.save(buffer, format="PNG")  # the core converts to the requested output_format
        return OutputImage(data=buffer.getvalue())


@hookimpl
def tryon_register_providers(registrar: Registrar) -> None:
    registrar.add_provider(
        ProviderSpec(
            name="example",
            config_type=ExampleConfig,
            models=(MODEL,),
            adapter_factory=MirrorAdapter,
        )
    )
