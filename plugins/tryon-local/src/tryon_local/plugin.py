"""The ``local`` provider: tryon-core's offline engine, registered through the same hook as any
outside plugin. Its price lives here, beside its adapter.

Registering imports neither numpy nor OpenCV: the engine is imported when the adapter is built,
that is when ``[providers.local]`` is enabled (a gateway without it saves ~50 MB per process).
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from tryon_core.plugin import (
    Capabilities,
    InputImage,
    InputRejected,
    ModelSpec,
    OutputImage,
    ProviderConfig,
    ProviderContext,
    ProviderRequest,
    ProviderSpec,
    Registrar,
    hookimpl,
)
from tryon_local.bounds import MAX_GARMENTS
from tryon_local.errors import UnusableInput

if TYPE_CHECKING:
    from tryon_local.engine import Engine

__all__ = ["CREDITS_PER_IMAGE", "MODEL", "LocalAdapter", "LocalConfig", "tryon_register_providers"]

CREDITS_PER_IMAGE = 1
MAX_OUTPUTS = 4

MODEL = ModelSpec(
    slug="local/overlay",
    name="Local overlay (offline)",
    description=(
        "Offline try-on on this server's CPU: cuts the garment from a plain background, finds "
        "the body (mediapipe pose when installed, else face-based proportions) and blends the "
        "garment in with the person's own shading. No network, GPU or downloaded weights."
    ),
    credits=CREDITS_PER_IMAGE,
    owned_by="tryon-local",
    capabilities=Capabilities(
        execution="sync",
        max_garments=MAX_GARMENTS,
        categories=("auto", "tops", "bottoms", "one-pieces"),
        max_outputs=MAX_OUTPUTS,
        uses_prompt=False,
        supports_seed=True,
    ),
)


class LocalConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    """``[providers.local]``: ``pose = false`` keeps to the base tier even if mediapipe is
    installed."""

    pose: bool = True


class LocalAdapter:
    """Runs the shared :class:`Engine` in a worker thread; never touches the network."""

    def __init__(self, config: LocalConfig) -> None:
        from tryon_local.engine import Engine  # numpy and OpenCV: only when enabled

        self.config = config
        self.engine: Engine = Engine(use_pose=None if config.pose else False)

    async def run(self, request: ProviderRequest, context: ProviderContext) -> list[OutputImage]:
        del context  # nothing to transport: no client, no credentials, no upstream task
        if not 1 <= request.n <= MAX_OUTPUTS:
            raise InputRejected(f"n must be between 1 and {MAX_OUTPUTS}", param="n")
        return await asyncio.to_thread(self._run, request)

    def _run(self, request: ProviderRequest) -> list[OutputImage]:
        person = _decode(request.person, "person")
        garments = [_decode(g, "garments") for g in request.garments]
        try:
            images = self.engine.variations(
                person, garments, request.category, seed=request.seed, n=request.n
            )
        except UnusableInput as exc:
            raise InputRejected(str(exc), param=exc.param) from exc
        return [OutputImage(data=_encode(image, request.output_format)) for image in images]


def _decode(image: InputImage, param: str) -> Image.Image:
    try:
        decoded = Image.open(io.BytesIO(image.data))
        decoded.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputRejected(f"the {param} image cannot be decoded", param=param) from exc
    return decoded


def _encode(image: Image.Image, output_format: str) -> bytes:
    buffer = io.BytesIO()
    if output_format == "jpeg":
        image.save(buffer, format="JPEG", quality=92)
    elif output_format == "webp":
        image.save(buffer, format="WEBP", quality=90, method=2)  # method 4 costs 7x the time
    else:
        image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


@hookimpl
def tryon_register_providers(registrar: Registrar) -> None:
    registrar.add_provider(
        ProviderSpec(
            name="local",
            config_type=LocalConfig,
            models=(MODEL,),
            adapter_factory=LocalAdapter,
        )
    )
