"""Registers the ``openai`` provider: GPT image models doing try-on through image edits.

Prices are in credits per output image, beside the adapter; operators override them with
``[models."openai/gpt-image-1"] credits``.
"""

from __future__ import annotations

from tryon_core.plugin import Capabilities, ModelSpec, ProviderSpec, Registrar, hookimpl
from tryon_openai.adapter import (
    MAX_INPUT_BYTES,
    GptImageOptions,
    MiniOptions,
    OpenAIAdapter,
    OpenAIConfig,
)

__all__ = ["CREDITS", "MODELS", "tryon_register_providers"]

#: Default credits per output image, 1 credit ~ US$0.01: OpenAI's list price for one portrait
#: (1024x1536) image at high quality, which "auto" usually picks, plus the input images (high
#: input fidelity for gpt-image-1), rounded up.
CREDITS: dict[str, int] = {"openai/gpt-image-1": 30, "openai/gpt-image-1-mini": 6}

_CAPABILITIES = Capabilities(
    execution="sync",
    max_garments=4,  # the API takes up to 16 images; more garments dilute the instruction
    categories=("auto", "tops", "bottoms", "one-pieces"),
    max_outputs=4,  # the API allows n up to 10
    input_formats=("image/jpeg", "image/png", "image/webp"),
    max_input_bytes=MAX_INPUT_BYTES,
    max_input_side=8192,  # no side limit is documented; the outputs are at most 1536 px
    uses_prompt=True,
    supports_seed=False,
)

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        slug="openai/gpt-image-1",
        name="OpenAI GPT Image 1",
        description=(
            "OpenAI's GPT image model editing the person photo with high input fidelity: "
            "up to 4 garments, prompt-guided, up to 4 images per request."
        ),
        credits=CREDITS["openai/gpt-image-1"],
        owned_by="openai",
        capabilities=_CAPABILITIES,
        options=GptImageOptions,
    ),
    ModelSpec(
        slug="openai/gpt-image-1-mini",
        name="OpenAI GPT Image 1 mini",
        description=(
            "The cheaper, faster GPT image model (no high input fidelity, so faces and "
            "garment details are kept less closely): up to 4 garments, up to 4 images."
        ),
        credits=CREDITS["openai/gpt-image-1-mini"],
        owned_by="openai",
        capabilities=_CAPABILITIES,
        options=MiniOptions,
    ),
)


@hookimpl
def tryon_register_providers(registrar: Registrar) -> None:
    registrar.add_provider(
        ProviderSpec(
            name="openai",
            config_type=OpenAIConfig,
            models=MODELS,
            adapter_factory=lambda _config: OpenAIAdapter(),
            fake="tryon_openai.fake:create_app",
        )
    )
