"""Registers the ``gemini`` provider: Google's ``gemini-2.5-flash-image`` over the Gemini API.

Its default price lives here, beside its adapter; operators override it with
``[models."google/gemini-2.5-flash-image"] credits``.
"""

from __future__ import annotations

from tryon_core.plugin import Capabilities, ModelSpec, ProviderSpec, Registrar, hookimpl
from tryon_gemini.adapter import SLUG, GeminiAdapter, GeminiConfig
from tryon_gemini.wire import MAX_IMAGE_BYTES, GeminiOptions

__all__ = ["CREDITS_PER_IMAGE", "MODEL", "PROVIDER", "tryon_register_providers"]

#: Google lists US$0.039 per output image; at 1 credit = 1 US cent, rounded up.
CREDITS_PER_IMAGE = 4

MODEL = ModelSpec(
    slug=SLUG,
    name="Gemini 2.5 Flash Image",
    description=(
        'Google\'s generative image model ("nano banana") editing the person photo from an '
        "instruction: up to two garments, any category, follows the client's prompt."
    ),
    credits=CREDITS_PER_IMAGE,
    owned_by="google",
    created=1759363200,  # 2025-10-02, general availability
    options=GeminiOptions,
    capabilities=Capabilities(
        execution="sync",
        # Google recommends at most 3 input images per prompt, the person photo included.
        max_garments=2,
        categories=("auto", "tops", "bottoms", "one-pieces"),
        max_outputs=1,  # one call makes one image
        input_formats=("image/jpeg", "image/png", "image/webp"),
        max_input_bytes=MAX_IMAGE_BYTES,
        uses_prompt=True,
        supports_seed=False,
    ),
)

PROVIDER = ProviderSpec(
    name="gemini",
    config_type=GeminiConfig,
    models=(MODEL,),
    adapter_factory=GeminiAdapter,
    fake="tryon_gemini.fake:create_app",
)


@hookimpl
def tryon_register_providers(registrar: Registrar) -> None:
    registrar.add_provider(PROVIDER)
